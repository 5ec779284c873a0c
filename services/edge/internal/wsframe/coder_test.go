package wsframe

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// captured is what the test server read from a real client.
type captured struct {
	msgs []Message
	raw  []byte // every byte the client sent after the upgrade request
	err  error
}

// rawServer is a WebSocket server whose handler hijacks the connection, does
// the handshake by hand and reads the client's frames with a Reader,
// answering pings and the close frame with AppendFrame and AppendClose.
func rawServer(t *testing.T, limit int64) (*httptest.Server, <-chan captured) {
	t.Helper()
	done := make(chan captured, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var c captured
		defer func() { done <- c }()
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			c.err = err
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(sum[:])+"\r\n\r\n"); err != nil {
			c.err = err
			return
		}
		var raw bytes.Buffer
		primed, _ := brw.Reader.Peek(brw.Reader.Buffered())
		raw.Write(primed)
		r := NewReader(limit)
		r.Prime(primed)
		src := io.TeeReader(conn, &raw)
		for {
			m, err := r.Next(src)
			if err != nil {
				c.err = err
				return
			}
			if m.Op.isControl() {
				m.Payload = bytes.Clone(m.Payload)
			}
			c.msgs = append(c.msgs, m)
			switch m.Op {
			case OpPing:
				_, err = conn.Write(AppendFrame(nil, OpPong, m.Payload))
			case OpClose:
				code, reason, perr := ParseClose(m.Payload)
				if perr != nil {
					c.err = perr
					return
				}
				_, err = conn.Write(AppendClose(nil, code, reason))
				c.raw = raw.Bytes()
				return
			}
			if err != nil {
				c.err = err
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, done
}

func TestCoderClient(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, done := rawServer(t, 2<<20)

	c, _, err := websocket.Dial(ctx, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 10)
	// Ping needs a concurrent reader for the pong; CloseRead also reads the
	// server's close frame.
	ctx = c.CloseRead(ctx)

	rng := rand.New(rand.NewPCG(1, 2))
	var want []Message
	write := func(op Opcode, p []byte) {
		t.Helper()
		typ := websocket.MessageBinary
		if op == OpText {
			typ = websocket.MessageText
		}
		if err := c.Write(ctx, typ, p); err != nil {
			t.Fatal(err)
		}
		want = append(want, Message{op, p})
	}
	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20} {
		write(OpText, utf8Text(n))
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		write(OpBinary, b)
	}

	// A message written in several Write calls is sent as fragments; the
	// é is split across two of them, and a ping goes in between.
	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"h\xc3", "\xa9llo", "", " wörld"} {
		if _, err := w.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
		if part == "" {
			if err := c.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			want = append(want, Message{Op: OpPing})
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want = append(want, Message{OpText, []byte("héllo wörld")})

	w, err = c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	big := pattern(100000)
	for i := 0; i < len(big); i += 30000 {
		if _, err := w.Write(big[i:min(i+30000, len(big))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want = append(want, Message{OpBinary, big})

	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	want = append(want, Message{Op: OpPing})

	reason := "bye ünïcode " + strings.Repeat("é", 60)
	if err := c.Close(4001, reason[:60]); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	closePayload := binary.BigEndian.AppendUint16(nil, 4001)
	want = append(want, Message{OpClose, append(closePayload, reason[:60]...)})

	got := <-done
	if got.err != nil {
		t.Fatalf("server: %v", got.err)
	}
	// Ping payloads are the client's counters; compare the ops only.
	for i := range got.msgs {
		if got.msgs[i].Op == OpPing && i < len(want) && want[i].Op == OpPing {
			want[i].Payload = got.msgs[i].Payload
		}
	}
	sameMessages(t, "live", got.msgs, want)
	if code, rsn, err := ParseClose(got.msgs[len(got.msgs)-1].Payload); err != nil || code != 4001 || rsn != reason[:60] {
		t.Fatalf("ParseClose = %d, %q, %v", code, rsn, err)
	}

	// The same bytes, replayed one byte per Read with would-block errors in
	// between, and in random chunks.
	t.Run("trickle", func(t *testing.T) {
		msgs, err := drain(NewReader(2<<20), &trickleSource{data: got.raw})
		if err != io.EOF {
			t.Fatal(err)
		}
		sameMessages(t, "trickle", msgs, want)
	})
	t.Run("random chunks", func(t *testing.T) {
		for seed := range uint64(5) {
			rng := rand.New(rand.NewPCG(seed, 7))
			var cuts []int
			for i := 0; i < len(got.raw); i += 1 + rng.IntN(9000) {
				cuts = append(cuts, i)
			}
			msgs, err := drain(NewReader(2<<20), &splitSource{data: got.raw, cuts: cuts})
			if err != io.EOF {
				t.Fatal(err)
			}
			sameMessages(t, "chunks", msgs, want)
		}
	})
	t.Run("limit", func(t *testing.T) {
		msgs, err := drain(NewReader(65535), bytes.NewReader(got.raw))
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Code != CloseMessageTooBig ||
			pe.Reason != "message of 65536 bytes exceeds the limit of 65535 bytes" {
			t.Fatalf("err = %v", err)
		}
		if len(msgs) != 8 {
			t.Fatalf("%d messages before the error, want 8", len(msgs))
		}
	})
}
