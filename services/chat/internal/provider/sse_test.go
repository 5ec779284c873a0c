package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestReadSSE(t *testing.T) {
	t.Parallel()
	in := ": comment\r\n" +
		"event: message\n" +
		"id: 7\n" +
		"data: {\"a\":1}\n\n" +
		"data:no-space\n" +
		"data: second line\n\n" +
		"retry: 10\n\n" + // an event without data is not dispatched
		"data: last without blank line"
	var got []string
	if err := readSSE(strings.NewReader(in), func(d []byte) error {
		got = append(got, string(d))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"a":1}`, "no-space\nsecond line", "last without blank line"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}

	stop := errors.New("stop")
	n := 0
	err := readSSE(strings.NewReader("data: 1\n\ndata: 2\n\n"), func([]byte) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("err %v after %d events", err, n)
	}

	long := "data: " + strings.Repeat("x", MaxSSELineBytes+1) + "\n\n"
	if err := readSSE(strings.NewReader(long), func([]byte) error { return nil }); err == nil {
		t.Fatal("a line over MaxSSELineBytes was accepted")
	}
}

func FuzzReadSSE(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte(": c\r\ndata:x\ndata: y\n\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var total int
		err := readSSE(bytes.NewReader(in), func(d []byte) error {
			total += len(d)
			return nil
		})
		if err == nil && total > len(in) {
			t.Fatalf("events carry %d bytes from %d of input", total, len(in))
		}
	})
}

func TestStatusKindAndRetryAfter(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]Kind{429: KindThrottled, 500: KindUnavailable, 503: KindUnavailable, 408: KindUnavailable, 400: KindRejected, 404: KindRejected} {
		if got := statusKind(status); got != want {
			t.Errorf("statusKind(%d) = %v, want %v", status, got, want)
		}
	}
	if parseRetryAfter("3") != 3e9 || parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT") != 0 || parseRetryAfter("-1") != 0 {
		t.Error("parseRetryAfter")
	}
	if !Retryable(&Error{Kind: KindThrottled}) || Retryable(&Error{Kind: KindRejected}) || Retryable(errors.New("x")) {
		t.Error("Retryable")
	}
}

func BenchmarkOpenAIStreamDecode(b *testing.B) {
	var sb strings.Builder
	for range 100 {
		sb.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null}]}` + "\n\n")
	}
	stream := sb.String()
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		n := 0
		_ = readSSE(strings.NewReader(stream), func(d []byte) error {
			var c oaChunk
			if err := json.Unmarshal(d, &c); err != nil {
				return err
			}
			n += len(c.Choices)
			return nil
		})
		if n != 100 {
			b.Fatal(n)
		}
	}
}
