package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// upstream is a fake OpenAI-compatible streaming server whose content
// chunks are the nanosecond Unix time at which each was sent (each chunk a
// separate word, " <ns>"), so a client can measure per-chunk latency.
type upstream struct {
	srv    *httptest.Server
	url    string
	chunks int
	gap    time.Duration
}

func newUpstream(chunks int, gap time.Duration) *upstream {
	u := &upstream{chunks: chunks, gap: gap}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	u.url = u.srv.URL + "/v1"
	return u
}

func (u *upstream) close() { u.srv.Close() }

// serveOnly serves the fake upstream on addr until SIGINT or SIGTERM.
func serveOnly(addr string, chunks int, gap time.Duration) {
	u := &upstream{chunks: chunks, gap: gap}
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("fake upstream: API root http://%s/v1, %d chunks %s apart", addr, chunks, gap)
	select {
	case err := <-errc:
		log.Fatal(err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model         string `json:"model"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, `{"error":{"message":"bad json","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	created := time.Now().Unix()
	send := func(choices string, usage string) bool {
		_, err := fmt.Fprintf(w, `data: {"id":"chatcmpl-up","object":"chat.completion.chunk","created":%d,"model":%q,"choices":%s%s}`+"\n\n", created, req.Model, choices, usage)
		fl.Flush()
		return err == nil && r.Context().Err() == nil
	}
	if !send(`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]`, "") {
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for i := range u.chunks {
		if i > 0 {
			t.Reset(u.gap)
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
		}
		if !send(fmt.Sprintf(`[{"index":0,"delta":{"content":" %d"},"finish_reason":null}]`, time.Now().UnixNano()), "") {
			return
		}
	}
	send(`[{"index":0,"delta":{},"finish_reason":"stop"}]`, "")
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		send(`[]`, fmt.Sprintf(`,"usage":{"prompt_tokens":3,"completion_tokens":%d,"total_tokens":%d}`, u.chunks, u.chunks+3))
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	fl.Flush()
}
