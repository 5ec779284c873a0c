package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
)

func TestOpenAITranslate(t *testing.T) {
	t.Parallel()
	ok := []struct {
		name, body string
		want       bus.ChatRequest
	}{
		{"string content", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "hi"}}}}}},
		{"parts, system, developer, merged turns", `{"model":"m","messages":[{"role":"system","content":"s1"},{"role":"developer","content":[{"type":"text","text":"s2"}]},
			{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"user","content":"c"},{"role":"assistant","content":"d"},{"role":"user","content":"e"}],
			"max_tokens":7,"temperature":0.3,"stop":"END"}`,
			bus.ChatRequest{ModelID: "m", System: []bus.ContentBlock{{Text: "s1"}, {Text: "s2"}}, Messages: []bus.Message{
				{Role: "user", Content: []bus.ContentBlock{{Text: "a"}, {Text: "b"}, {Text: "c"}}},
				{Role: "assistant", Content: []bus.ContentBlock{{Text: "d"}}},
				{Role: "user", Content: []bus.ContentBlock{{Text: "e"}}},
			}, InferenceConfig: &bus.InferenceConfig{MaxTokens: 7, Temperature: ptr(0.3), StopSequences: []string{"END"}}}},
		{"max_completion_tokens wins, stop array", `{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5,"max_completion_tokens":9,"stop":["a","b"],"n":1}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}},
				InferenceConfig: &bus.InferenceConfig{MaxTokens: 9, StopSequences: []string{"a", "b"}}}},
	}
	for _, tc := range ok {
		var r oaChatRequest
		if err := json.Unmarshal([]byte(tc.body), &r); err != nil {
			t.Fatal(err)
		}
		got, aerr := r.toChatRequest()
		if aerr != nil {
			t.Fatalf("%s: %+v", tc.name, aerr.body)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(tc.want)
		if !bytes.Equal(g, w) {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, g, w)
		}
	}
	bad := []struct{ body, param string }{
		{`{"messages":[{"role":"user","content":"x"}]}`, "model"},
		{`{"model":"m","messages":[]}`, "messages"},
		{`{"model":"m","messages":[{"role":"system","content":"only system"}]}`, "messages"},
		{`{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "messages[0].role"},
		{`{"model":"m","messages":[{"role":"user","content":null}]}`, "messages[0].content"},
		{`{"model":"m","messages":[{"role":"user","content":"  "}]}`, "messages[0].content"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, "messages[0].content[0].type"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`, "messages[0].content[0].text"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"n":2}`, "n"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}`, "max_tokens"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":5}`, "stop"},
	}
	for _, tc := range bad {
		var r oaChatRequest
		if err := json.Unmarshal([]byte(tc.body), &r); err != nil {
			t.Fatal(err)
		}
		_, aerr := r.toChatRequest()
		if aerr == nil || aerr.status != 400 || aerr.body.Param == nil || *aerr.body.Param != tc.param || !strings.Contains(aerr.body.Message, tc.param) {
			t.Errorf("%s: got %+v, want 400 naming %s", tc.body, aerr, tc.param)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestOpenAIErrorMapping(t *testing.T) {
	t.Parallel()
	cases := []struct {
		ev         bus.ErrorEvent
		status     int
		retryAfter int64
	}{
		{bus.ErrorEvent{Type: bus.ErrTypeValidation}, 400, 0},
		{bus.ErrorEvent{Type: bus.ErrTypeModelNotFound}, 404, 0},
		{bus.ErrorEvent{Type: bus.ErrTypeForbidden}, 403, 0},
		{bus.ErrorEvent{Type: bus.ErrTypeQuotaExceeded, Details: map[string]any{"retryAfterSeconds": float64(42)}}, 429, 42},
		{bus.ErrorEvent{Type: bus.ErrTypeUpstreamThrottled}, 429, 1},
		{bus.ErrorEvent{Type: bus.ErrTypeUpstreamError}, 502, 0},
		{bus.ErrorEvent{Type: bus.ErrTypeInternal}, 503, 0},
	}
	for _, tc := range cases {
		a := oaFromEvent(&tc.ev)
		if a.status != tc.status || a.retryAfter != tc.retryAfter || a.body.Code != tc.ev.Type {
			t.Errorf("%s: got %d retry %d code %q", tc.ev.Type, a.status, a.retryAfter, a.body.Code)
		}
	}
}

// fakeChat answers every INBOUND request of prefix on its Gh-Reply-To with
// events from script (given the decoded request), like chat does.
func fakeChat(t *testing.T, nc *nats.Conn, prefix string, script func(req bus.ChatRequest, reqID string) []bus.Event) {
	t.Helper()
	sub, err := nc.Subscribe(bus.NewSubjects(prefix).InboundAll(), func(m *nats.Msg) {
		req, err := bus.DecodeChatRequest(m.Data)
		if err != nil {
			return
		}
		reqID := m.Header.Get(bus.HeaderRequestID)
		for _, ev := range script(req, reqID) {
			ev.RequestID = reqID
			data, _ := json.Marshal(ev)
			_ = nc.Publish(m.Header.Get(bus.HeaderReplyTo), data)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
}

// numbered sets Seq on events in order.
func numbered(evs ...bus.Event) []bus.Event {
	for i := range evs {
		evs[i].Seq = i
	}
	return evs
}

func answerEvents(words ...string) []bus.Event {
	evs := []bus.Event{{MessageStart: &bus.MessageStart{Role: "assistant"}}}
	for _, w := range words {
		evs = append(evs, bus.Event{ContentBlockDelta: &bus.ContentBlockDelta{Delta: bus.Delta{Text: w}}})
	}
	evs = append(evs, bus.Event{ContentBlockStop: &bus.ContentBlockStop{}}, bus.Event{MessageStop: &bus.MessageStop{StopReason: "max_tokens"}},
		bus.Event{Metadata: &bus.Metadata{Usage: bus.Usage{InputTokens: 3, OutputTokens: int64(len(words))}}})
	return numbered(evs...)
}

func (e *env) postOA(path, token, body string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.svc.URL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decodeOAError(t *testing.T, resp *http.Response) oaError {
	t.Helper()
	var body struct {
		Error oaError `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Error
}

const oaHello = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`

func TestOpenAIHandler(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	fakeChat(t, e.nc, "", func(req bus.ChatRequest, _ string) []bus.Event {
		switch req.Messages[0].Content[0].Text {
		case "quota":
			return numbered(bus.Event{Error: &bus.ErrorEvent{Type: bus.ErrTypeQuotaExceeded, Message: "quota exceeded", Details: map[string]any{"retryAfterSeconds": 42}}})
		case "gap":
			evs := answerEvents("a", "b")
			return append(evs[:1], evs[2:]...)
		case "guardrail":
			evs := answerEvents("blocked")[:2]
			return append(evs, bus.Event{Seq: 2, Error: &bus.ErrorEvent{Type: bus.ErrTypeGuardrailIntervened, Message: "blocked"}})
		case "midstream":
			evs := answerEvents("a", "b")[:3]
			return append(evs, bus.Event{Seq: 3, Error: &bus.ErrorEvent{Type: bus.ErrTypeUpstreamThrottled, Message: "slow down"}})
		}
		return answerEvents("Hel", "lo")
	})

	// Non-streaming, with an API key.
	req, _ := http.NewRequest(http.MethodPost, e.svc.URL()+PathChatCompletions, strings.NewReader(oaHello))
	req.Header.Set("x-api-key", "key-alice")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var c oaCompletion
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d err %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if c.Choices[0].Message.Content != "Hello" || c.Choices[0].FinishReason != "length" || c.Usage.TotalTokens != 5 || c.ID != "chatcmpl-"+resp.Header.Get("X-Request-Id") {
		t.Fatalf("completion %+v", c)
	}

	// Streaming with usage: exact SSE lines.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 6 || lines[5] != "data: [DONE]" || !strings.Contains(lines[0], `"delta":{"role":"assistant","content":""}`) ||
		!strings.Contains(lines[1], `"content":"Hel"`) || !strings.Contains(lines[3], `"finish_reason":"length"`) ||
		!strings.Contains(lines[4], `"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}`) {
		t.Fatalf("stream:\n%s", strings.Join(lines, "\n"))
	}

	// Quota refusal: 429 with Retry-After.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"quota"}]}`)
	if oe := decodeOAError(t, resp); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "42" || oe.Code != bus.ErrTypeQuotaExceeded {
		t.Fatalf("quota: %d %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), oe)
	}
	if id := resp.Header.Get("X-Request-Id"); !bus.ValidToken(id) {
		t.Fatalf("quota refusal's X-Request-Id %q, want the request id", id)
	}
	// Lost events are detected.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"gap"}]}`)
	if oe := decodeOAError(t, resp); resp.StatusCode != 502 || !strings.Contains(oe.Message, "lost") {
		t.Fatalf("gap: %d %+v", resp.StatusCode, oe)
	}
	// An error after the first chunk is an SSE error event.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","stream":true,"messages":[{"role":"user","content":"midstream"}]}`)
	all, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(all), `data: {"error":{"message":"slow down`) || strings.Contains(string(all), "[DONE]") {
		t.Fatalf("midstream: %d %s", resp.StatusCode, all)
	}
	// A guardrail intervention is finish_reason content_filter.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"guardrail"}]}`)
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 200 || c.Choices[0].FinishReason != "content_filter" || c.Choices[0].Message.Content != "blocked" {
		t.Fatalf("guardrail: %d %+v %v", resp.StatusCode, c, err)
	}
	// Bad credentials, bad JSON, too big.
	resp = e.postOA(PathChatCompletions, "nobody", oaHello)
	if oe := decodeOAError(t, resp); resp.StatusCode != 401 || oe.Code != "invalid_api_key" {
		t.Fatalf("401: %d %+v", resp.StatusCode, oe)
	}
	resp = e.postOA(PathChatCompletions, "alice", `{"model":`)
	if oe := decodeOAError(t, resp); resp.StatusCode != 400 || oe.Type != "invalid_request_error" {
		t.Fatalf("bad JSON: %d %+v", resp.StatusCode, oe)
	}
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"`+strings.Repeat("x", int(DefaultReadLimit))+`"}]}`)
	if oe := decodeOAError(t, resp); resp.StatusCode != 413 || !strings.Contains(oe.Message, "limit") {
		t.Fatalf("too big: %d %+v", resp.StatusCode, oe)
	}
	// No chat service answering the catalog: 503.
	req, _ = http.NewRequest(http.MethodGet, e.svc.URL()+PathModels, nil)
	req.Header.Set("Authorization", "alice")
	resp, err = e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if oe := decodeOAError(t, resp); resp.StatusCode != 503 || oe.Code != "service_unavailable" {
		t.Fatalf("models: %d %+v", resp.StatusCode, oe)
	}
	resp.Body.Close()
}

// TestOpenAIForbidden runs an edge whose authz denies mallory's publishes:
// the API answers 403 and nothing reaches INBOUND.
func TestOpenAIForbidden(t *testing.T) {
	t.Parallel()
	const prefix = "oa403"
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj := bus.NewSubjects(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := bus.EnsureStreams(ctx, js, subj, bus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := micro.AddService(nc, micro.Config{Name: "authz-deny", Version: "0.0.1", QueueGroup: bus.QueueAuthz})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	_ = svc.AddEndpoint("verify", micro.HandlerFunc(func(r micro.Request) {
		bus.Respond(r, bus.VerifyResponse{Identity: identity.Identity{Sub: "mallory", Issuer: "test", ChannelID: "mallory", Kind: identity.KindUser}})
	}), micro.WithEndpointSubject(subj.AuthzVerify()))
	_ = svc.AddEndpoint("check", micro.HandlerFunc(func(r micro.Request) {
		bus.Respond(r, bus.CheckResponse{Allow: false, Reason: "mallory may not publish"})
	}), micro.WithEndpointSubject(subj.AuthzCheck()))
	edgeSvc, err := New(Config{Prefix: prefix, Addr: "127.0.0.1:0", DevTLSDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}, natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, nc: nc, js: js, svc: edgeSvc, done: make(chan error, 1)}
	e.client = &http.Client{Transport: &http.Transport{TLSClientConfig: e.tlsConfig()}, Timeout: testTimeout}
	runWith(t, e)

	resp := e.postOA(PathChatCompletions, "mallory", oaHello)
	if oe := decodeOAError(t, resp); resp.StatusCode != 403 || oe.Code != "forbidden" || !strings.Contains(oe.Message, "may not publish") {
		t.Fatalf("403: %d %+v", resp.StatusCode, oe)
	}
	info, err := js.Stream(ctx, subj.StreamInbound())
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := info.Info(ctx); st.State.Msgs != 0 {
		t.Fatalf("%d messages reached INBOUND", st.State.Msgs)
	}
}
