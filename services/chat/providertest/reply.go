package providertest

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Usage is the usage a fake reports at the end of a stream. For Bedrock,
// InputTokens is the uncached input only, as Converse reports it;
// CacheWriteInputTokens (tokens written to the prompt cache) is reported
// by the fake Bedrock only.
type Usage struct {
	InputTokens, OutputTokens, CacheReadInputTokens, CacheWriteInputTokens int64
	// CacheWrite1hInputTokens is the part of CacheWriteInputTokens written
	// for an hour, reported in cacheDetails (Bedrock only).
	CacheWrite1hInputTokens int64
}

// Reply scripts one answer of a fake upstream.
type Reply struct {
	// Status, when not 0 or 200, fails the request with this HTTP status
	// before any stream starts (429 is throttling).
	Status int
	// RetryAfter is sent as the Retry-After header with a failing Status.
	RetryAfter string
	// Chunks are the text deltas, in order.
	Chunks []string
	// Reasoning are pieces of the model's reasoning, streamed before the
	// text chunks (each after ChunkDelay but the first).
	Reasoning []string
	// RedactedReasoning, when set, is reasoning the provider redacted,
	// streamed as an encrypted block after the reasoning (Bedrock only).
	RedactedReasoning []byte
	// ToolCalls are tool calls the model makes after the text chunks,
	// in order.
	ToolCalls []ToolCall
	// ChunkDelay is the pause before each chunk after the first.
	ChunkDelay time.Duration
	// StopReason is the stop reason; "" means end_turn (Bedrock) or stop
	// (OpenAI).
	StopReason string
	// Usage is reported at the end; nil sends no usage at all.
	Usage *Usage
	// ThrottleAfter, when >= 0 with Throttle set, fails the stream with a
	// throttling exception (Bedrock) or error event (OpenAI) after that
	// many chunks.
	Throttle      bool
	ThrottleAfter int
	// Hang, when set, keeps the stream open after the chunks until the
	// client goes away (for cancellation tests).
	Hang bool
}

// ToolCall scripts one tool call of a reply.
type ToolCall struct {
	// ID is the call's id (Bedrock toolUseId, OpenAI tool_calls[].id).
	ID string
	// Name is the tool's name.
	Name string
	// InputChunks are the pieces of the input JSON, streamed in order;
	// joined they must be a JSON object.
	InputChunks []string
}

// Request is one request a fake received.
type Request struct {
	// Path is the URL path (Bedrock: /model/<id>/converse-stream).
	Path string
	// Header holds the request headers.
	Header http.Header
	// Body is the decoded JSON body.
	Body map[string]any
	// Raw is the body as received, for checks the decoding would blur
	// (numbers beyond float64's precision).
	Raw []byte
}

// script is the shared reply queue and request log of a fake.
type script struct {
	mu        sync.Mutex
	queue     []Reply
	def       Reply
	requests  []Request
	cancelled int
	inFlight  int
	maxFlight int
	changed   chan struct{} // closed and replaced on every change
}

func newScript(def Reply) *script {
	return &script{def: def, changed: make(chan struct{})}
}

// begin counts a request in flight; the returned func, safe to call more
// than once, ends it. A handler ends it before its last write, so that a
// client which read the whole answer never sees it still in flight.
func (s *script) begin() func() {
	s.mu.Lock()
	s.inFlight++
	s.maxFlight = max(s.maxFlight, s.inFlight)
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
		})
	}
}

// MaxInFlight returns the most requests that were being answered at once.
func (s *script) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxFlight
}

// next records r and returns the reply to give.
func (s *script) next(r *http.Request, body []byte) Reply {
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: m, Raw: body})
	s.notify()
	if len(s.queue) == 0 {
		return s.def
	}
	rep := s.queue[0]
	s.queue = s.queue[1:]
	return rep
}

func (s *script) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *script) markCancelled() {
	s.mu.Lock()
	s.cancelled++
	s.notify()
	s.mu.Unlock()
}

// Push queues replies, answered in order before the default.
func (s *script) Push(r ...Reply) {
	s.mu.Lock()
	s.queue = append(s.queue, r...)
	s.mu.Unlock()
}

// Requests returns a copy of the requests received so far.
func (s *script) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Cancelled returns how many requests ended because the client went away
// before the reply was complete.
func (s *script) Cancelled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled
}

// WaitFor blocks until cond holds (checked after every request and
// cancellation) or ctx ends; it reports whether cond held.
func (s *script) WaitFor(ctx context.Context, cond func(requests, cancelled int) bool) bool {
	for {
		s.mu.Lock()
		ok := cond(len(s.requests), s.cancelled)
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

// pause waits d or until ctx ends; it reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
