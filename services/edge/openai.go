package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
)

// Limits of the OpenAI-compatible API.
const (
	// OpenAIEventTimeout bounds the wait for the next event of an answer
	// (the first one included); passing it ends the request (504 before
	// the first byte, an error event after) and cancels the generation.
	// It covers chat's retries and fallbacks before the first token.
	OpenAIEventTimeout = 5 * time.Minute
	// OpenAIReplyBuffer is how many answer events may wait for a slow
	// HTTP client; past it NATS drops events, the gap is detected and the
	// request ends with an error.
	OpenAIReplyBuffer = 1024
	// ModelsTimeout bounds asking chat for the model catalog.
	ModelsTimeout = 3 * time.Second
)

// apiKeyPrefix starts every API key authz issues (authz.APIKeyPrefix; the
// edge must not import authz, and systemtest/openai_api_test.go proves the
// two agree).
const apiKeyPrefix = "gh_"

// writeOAError writes an OpenAI-format error.
func writeOAError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(e.retryAfter, 10))
	}
	writeJSON(w, e.status, struct {
		Error oaError `json:"error"`
	}{e.body})
}

// oaFromProtocol maps an edge protocol error (auth, authz, bus) to an
// OpenAI error; denied says a failed authz check is 403, not 401.
func oaFromProtocol(e *protocol.Error, denied bool) *apiError {
	a := &apiError{status: e.Status(), body: oaError{Message: e.Message}}
	switch a.status {
	case http.StatusUnauthorized:
		a.body.Type, a.body.Code = "invalid_request_error", "invalid_api_key"
		if denied {
			a.status, a.body.Type, a.body.Code = http.StatusForbidden, "permission_error", "forbidden"
		}
	case http.StatusBadRequest:
		a.body.Type, a.body.Code = "invalid_request_error", "invalid_value"
	case http.StatusServiceUnavailable:
		a.body.Type, a.body.Code = "server_error", "service_unavailable"
	default:
		a.body.Type, a.body.Code = "server_error", "internal_error"
	}
	return a
}

// oaFromEvent maps a chat error event to an OpenAI error.
func oaFromEvent(ev *bus.ErrorEvent) *apiError {
	a := &apiError{body: oaError{Message: ev.Message, Type: ev.Type, Code: ev.Type}}
	retry := func() {
		a.retryAfter = 1
		if v, ok := ev.Details["retryAfterSeconds"].(float64); ok && v >= 1 {
			a.retryAfter = int64(v)
		}
	}
	switch ev.Type {
	case bus.ErrTypeValidation:
		a.status, a.body.Type = http.StatusBadRequest, "invalid_request_error"
	case bus.ErrTypeModelNotFound:
		a.status, a.body.Type = http.StatusNotFound, "invalid_request_error"
		p := "model"
		a.body.Param = &p
	case bus.ErrTypeForbidden:
		a.status, a.body.Type = http.StatusForbidden, "permission_error"
		p := "model"
		a.body.Param = &p
	case bus.ErrTypeQuotaExceeded:
		a.status = http.StatusTooManyRequests
		retry()
	case bus.ErrTypeUpstreamThrottled:
		a.status = http.StatusTooManyRequests
		retry()
	case bus.ErrTypeUpstreamError:
		a.status, a.body.Type = http.StatusBadGateway, "server_error"
		if st, _ := ev.Details["upstreamStatus"].(float64); upstreamRefusedRequest(int(st)) {
			// The model's provider refused this request (an image a
			// text model cannot read, a schema it rejects): asking again
			// will not help, and SDKs retry a 502.
			a.status, a.body.Type = http.StatusBadRequest, "invalid_request_error"
		}
	default:
		a.status, a.body.Type = http.StatusServiceUnavailable, "server_error"
	}
	if ev.RequestID != "" {
		a.body.Message += " (request " + ev.RequestID + ")"
	}
	return a
}

// upstreamRefusedRequest reports whether an upstream status says the
// request itself was refused (400, 413, 422), not the gateway's
// credentials (401, 403) or configuration (404).
func upstreamRefusedRequest(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusUnprocessableEntity
}

// authenticate verifies the request's bearer token or API key. OpenAI
// clients send an API key as "Authorization: Bearer <key>", so a bearer
// value that is not a JWT (three dot-separated parts) and starts with
// [apiKeyPrefix] is verified as an API key.
// Identities are cached (see [Service.verifyHTTP]).
func (s *Service) authenticate(r *http.Request) (httpCaller, *apiError) {
	cred := credentialFrom(r.Header.Get(headerAuthorization), r.Header.Get(headerAPIKey))
	if strings.HasPrefix(cred.Token, apiKeyPrefix) && strings.Count(cred.Token, ".") != 2 {
		cred = credential{APIKey: cred.Token}
	}
	c, perr := s.verifyHTTP(r.Context(), cred)
	if perr != nil {
		return c, oaFromProtocol(perr, false)
	}
	return c, nil
}

// catalog authenticates the caller and asks chat for the model catalog;
// on failure it has written the error.
func (s *Service) catalog(w http.ResponseWriter, r *http.Request) (bus.ModelsResponse, bool) {
	if _, aerr := s.authenticate(r); aerr != nil {
		writeOAError(w, aerr)
		return bus.ModelsResponse{}, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), ModelsTimeout)
	defer cancel()
	resp, err := bus.Request[bus.ModelsResponse](ctx, s.nc, s.subj.ChatModels(), bus.ModelsRequest{}, nil)
	if err != nil {
		s.log.Warn("models request failed", "err", err)
		writeOAError(w, &apiError{status: http.StatusServiceUnavailable, body: oaError{Message: "the chat service is unavailable", Type: "server_error", Code: "service_unavailable"}})
		return resp, false
	}
	return resp, true
}

// handleModels implements GET /v1/models from chat's catalog.
func (s *Service) handleModels(w http.ResponseWriter, r *http.Request) {
	resp, ok := s.catalog(w, r)
	if !ok {
		return
	}
	list := struct {
		Object string    `json:"object"`
		Data   []oaModel `json:"data"`
	}{Object: "list", Data: make([]oaModel, 0, len(resp.Models))}
	for _, m := range resp.Models {
		list.Data = append(list.Data, newOAModel(m))
	}
	writeJSON(w, http.StatusOK, list)
}

// handleModel implements GET /v1/models/{model}; an alias finds its model.
func (s *Service) handleModel(w http.ResponseWriter, r *http.Request) {
	resp, ok := s.catalog(w, r)
	if !ok {
		return
	}
	name := r.PathValue("model")
	for _, m := range resp.Models {
		if m.ID == name || slices.Contains(m.Aliases, name) {
			writeJSON(w, http.StatusOK, newOAModel(m))
			return
		}
	}
	p := "model"
	writeOAError(w, &apiError{status: http.StatusNotFound, body: oaError{
		Message: fmt.Sprintf("model %q is not a known model", name), Type: "invalid_request_error", Param: &p, Code: bus.ErrTypeModelNotFound}})
}

// handleChatCompletions implements POST /v1/chat/completions on the chat
// pipeline: the request goes to INBOUND with Gh-Reply-To set to this
// edge's reply subject, and chat's events come back there.
func (s *Service) handleChatCompletions(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w, r, span := startHTTPSpan(w, r, "POST "+PathChatCompletions, PathChatCompletions)
	defer span.End()
	caller, aerr := s.authenticate(r)
	if aerr != nil {
		writeOAError(w, aerr)
		return
	}
	id := caller.id
	var body oaChatRequest
	bodyLimit := s.openAIBodyLimit()
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, bodyLimit))
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeOAError(w, &apiError{status: http.StatusRequestEntityTooLarge, body: oaError{
				Message: fmt.Sprintf("request body is larger than the limit of %d bytes (nats.max_request_bytes %d, plus a quarter for the JSON of the OpenAI form); send fewer or smaller images or less text", bodyLimit, s.maxRequest),
				Type:    "invalid_request_error", Code: "request_too_large"}})
			return
		}
		writeOAError(w, badParam("", "request body is not a valid chat completion request: %v", err))
		return
	}
	req, aerr := body.toChatRequest()
	if aerr != nil {
		writeOAError(w, aerr)
		return
	}
	inbound := "/" + bus.NamespaceInbound + "/" + id.ChannelID
	if perr := s.checkHTTP(r.Context(), caller, bus.OpPublish, inbound); perr != nil {
		writeOAError(w, oaFromProtocol(perr, true))
		return
	}
	data, err := json.Marshal(req)
	if err != nil {
		writeOAError(w, oaFromProtocol(protocol.Internal("cannot encode the request"), false))
		return
	}
	if len(data) > s.maxRequest {
		writeOAError(w, &apiError{status: http.StatusRequestEntityTooLarge, body: oaError{
			Message: fmt.Sprintf("the request is %d bytes as stored for chat (images base64-encoded), more than the limit of %d bytes (nats.max_request_bytes); send fewer or smaller images or less text", len(data), s.maxRequest),
			Type:    "invalid_request_error", Code: "request_too_large"}})
		return
	}
	idHeader, err := identity.Encode(id)
	if err != nil {
		writeOAError(w, oaFromProtocol(protocol.Internal("cannot encode caller identity"), false))
		return
	}

	// Subscribe to the answer first, then store the request.
	reqID := bus.NewID()
	replySubject := s.subj.Reply(s.id, reqID)
	events := make(chan *nats.Msg, OpenAIReplyBuffer)
	sub, err := s.nc.ChanSubscribe(replySubject, events)
	if err != nil {
		writeOAError(w, oaFromProtocol(protocol.Unavailable("message bus unavailable"), false))
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := &nats.Msg{Subject: s.subj.Inbound(id.ChannelID), Data: data, Header: bus.InjectTrace(r.Context(), nats.Header{})}
	msg.Header.Set(bus.HeaderIdentity, idHeader)
	msg.Header.Set(bus.HeaderRequestID, reqID)
	msg.Header.Set(bus.HeaderMsgID, reqID)
	msg.Header.Set(bus.HeaderReplyTo, replySubject)
	pctx, cancel := context.WithTimeout(r.Context(), PublishTimeout)
	_, err = s.js.PublishMsg(pctx, msg)
	cancel()
	if err != nil {
		status, text := publishFailure(err)
		s.log.Warn("openai: store request failed", "request_id", reqID, "err", err)
		writeOAError(w, &apiError{status: status, body: oaError{Message: text, Type: "server_error", Code: "service_unavailable"}})
		return
	}
	a := &oaAnswer{
		s: s, w: w, r: r, id: id, reqID: reqID, model: body.Model, events: events,
		stream: body.Stream, includeUsage: body.Stream && body.StreamOptions != nil && body.StreamOptions.IncludeUsage,
		created: time.Now().Unix(), start: start,
	}
	// Every response from here on, answer or error, names the request.
	w.Header().Set("X-Request-Id", reqID)
	if !a.run() {
		s.cancelRequests(id, []string{reqID})
	}
}

// oaAnswer turns one request's chat events into an OpenAI response.
type oaAnswer struct {
	s            *Service
	w            http.ResponseWriter
	r            *http.Request
	id           identity.Identity
	reqID        string
	model        string
	events       <-chan *nats.Msg
	stream       bool
	includeUsage bool
	created      int64
	start        time.Time // the request arrived (time to first chunk)

	started bool // stream: the 200 and headers are written
	seq     int  // next expected event sequence number
	text    strings.Builder
	// reasoning is the model's reasoning of a non-streamed answer.
	reasoning strings.Builder
	// thinking collects the reasoning blocks to hand back whole.
	thinking thinkingTracker
	finish   string
	usage    oaUsage
	// calls are the tool calls so far, in the order they started; a
	// call's index in it is its OpenAI tool_calls index.
	calls []oaToolCall
	// args holds the arguments of each call so far (streamed: only
	// whether any came).
	args [][]byte
	// callOf maps a content block index to its index in calls.
	callOf map[int]int
}

// run reads events until the answer ends. It reports false when the
// answer did not end (client gone, timeout, lost events), so the caller
// cancels the generation.
func (a *oaAnswer) run() bool {
	timer := time.NewTimer(OpenAIEventTimeout)
	defer timer.Stop()
	for {
		var m *nats.Msg
		select {
		case m = <-a.events:
		case <-a.r.Context().Done():
			a.s.log.Debug("openai: client went away", "request_id", a.reqID)
			return false
		case <-timer.C:
			a.fail(&apiError{status: http.StatusGatewayTimeout, body: oaError{
				Message: fmt.Sprintf("no answer event within %s (request %s)", OpenAIEventTimeout, a.reqID), Type: "server_error", Code: "timeout"}})
			return false
		}
		timer.Reset(OpenAIEventTimeout)
		var ev bus.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.Seq != a.seq {
			a.s.log.Warn("openai: answer events lost or garbled", "request_id", a.reqID, "want_seq", a.seq, "got_seq", ev.Seq, "err", err)
			a.fail(&apiError{status: http.StatusBadGateway, body: oaError{Message: "answer events were lost (request " + a.reqID + ")", Type: "server_error", Code: "upstream_error"}})
			return false
		}
		a.seq++
		done, ok := a.on(&ev)
		if !ok {
			return false
		}
		if done {
			return true
		}
	}
}

// on handles one event; done reports the final one, ok false a failed
// write to the client.
func (a *oaAnswer) on(ev *bus.Event) (done, ok bool) {
	switch {
	case ev.Error != nil:
		if ev.Error.Type == bus.ErrTypeGuardrailIntervened {
			a.finish = "content_filter"
			return true, a.end()
		}
		a.fail(oaFromEvent(ev.Error))
		return true, true
	case ev.MessageStart != nil:
		// The role chunk waits for the first token, so that a failure
		// before it (throttling after retries) still gets its status.
	case ev.ContentBlockStart != nil:
		return false, a.toolStart(ev.ContentBlockStart)
	case ev.ContentBlockDelta != nil && ev.ContentBlockDelta.Delta.ReasoningContent != nil:
		rd := ev.ContentBlockDelta.Delta.ReasoningContent
		block := a.thinking.add(ev.ContentBlockDelta.ContentBlockIndex, rd)
		if !a.stream {
			a.reasoning.WriteString(rd.Text)
			return false, true
		}
		d := oaDelta{ReasoningContent: rd.Text}
		if block != nil {
			d.ThinkingBlocks = []oaThinkingBlock{*block}
		}
		if d.ReasoningContent == "" && block == nil {
			return false, true
		}
		return false, a.opening() && a.chunk(d, nil, nil)
	case ev.ContentBlockDelta != nil && ev.ContentBlockDelta.Delta.ToolUse != nil:
		return false, a.toolInput(ev.ContentBlockDelta.ContentBlockIndex, ev.ContentBlockDelta.Delta.ToolUse.Input)
	case ev.ContentBlockDelta != nil:
		t := ev.ContentBlockDelta.Delta.Text
		if a.stream {
			return false, a.opening() && a.chunk(oaDelta{Content: &t}, nil, nil)
		}
		a.text.WriteString(t)
	case ev.ContentBlockStop != nil:
		return false, a.toolStop(ev.ContentBlockStop.ContentBlockIndex)
	case ev.MessageStop != nil:
		a.finish = finishReason(ev.MessageStop.StopReason)
		if a.stream {
			return false, a.opening() && a.chunk(oaDelta{}, &a.finish, nil)
		}
	case ev.Metadata != nil:
		u := ev.Metadata.Usage
		a.usage = oaUsage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.InputTokens + u.OutputTokens}
		return true, a.end()
	}
	return false, true
}

// toolStart handles the start of a tool-use block: a new tool call.
func (a *oaAnswer) toolStart(st *bus.ContentBlockStart) bool {
	u := st.Start.ToolUse
	if u == nil {
		return true // a kind of block this API does not carry
	}
	if a.callOf == nil {
		a.callOf = make(map[int]int)
	}
	k := len(a.calls)
	a.callOf[st.ContentBlockIndex] = k
	a.calls = append(a.calls, oaToolCall{ID: u.ToolUseID, Type: "function", Function: oaFunctionCall{Name: u.Name}})
	a.args = append(a.args, nil)
	if !a.stream {
		return true
	}
	return a.opening() && a.chunk(oaDelta{ToolCalls: []oaToolCallDelta{{
		Index: k, ID: u.ToolUseID, Type: "function", Function: oaFunctionCallDelta{Name: u.Name},
	}}}, nil, nil)
}

// emptyArguments are the arguments of a call whose input never came (a
// function without parameters): clients parse arguments as JSON.
const emptyArguments = "{}"

// toolStop ends a tool call's block: a streamed call that got no
// arguments gets "{}".
func (a *oaAnswer) toolStop(block int) bool {
	k, ok := a.callOf[block]
	if !ok || !a.stream || a.args[k] != nil {
		return true
	}
	a.args[k] = []byte{}
	return a.chunk(oaDelta{ToolCalls: []oaToolCallDelta{{Index: k, Function: oaFunctionCallDelta{Arguments: emptyArguments}}}}, nil, nil)
}

// toolInput handles a piece of a tool call's arguments.
func (a *oaAnswer) toolInput(block int, input string) bool {
	k, ok := a.callOf[block]
	if !ok {
		a.s.log.Warn("openai: tool input for a block that never started", "request_id", a.reqID, "block", block)
		return true
	}
	if !a.stream {
		a.args[k] = append(a.args[k], input...)
		return true
	}
	if a.args[k] == nil {
		a.args[k] = []byte{} // arguments came
	}
	return a.chunk(oaDelta{ToolCalls: []oaToolCallDelta{{Index: k, Function: oaFunctionCallDelta{Arguments: input}}}}, nil, nil)
}

// end completes the response.
func (a *oaAnswer) end() bool {
	if !a.stream {
		if a.finish == "" {
			a.finish = "stop"
		}
		for k := range a.calls {
			a.calls[k].Function.Arguments = string(a.args[k])
			if len(a.args[k]) == 0 {
				a.calls[k].Function.Arguments = emptyArguments
			}
		}
		msg := oaMessage{Role: "assistant", ToolCalls: a.calls, ReasoningContent: a.reasoning.String(), ThinkingBlocks: a.thinking.done}
		if text := a.text.String(); text != "" || len(a.calls) == 0 {
			msg.Content = &text
		}
		writeJSON(a.w, http.StatusOK, oaCompletion{
			ID: "chatcmpl-" + a.reqID, Object: "chat.completion", Created: a.created, Model: a.model,
			Choices: []oaChoice{{Message: msg, FinishReason: a.finish}},
			Usage:   a.usage,
		})
		return true
	}
	if a.finish == "content_filter" {
		if !a.opening() || !a.chunk(oaDelta{}, &a.finish, nil) {
			return false
		}
	}
	if a.includeUsage {
		if !a.write(oaChunk{ID: "chatcmpl-" + a.reqID, Object: "chat.completion.chunk", Created: a.created, Model: a.model, Choices: []oaChunkChoice{}, Usage: &a.usage}) {
			return false
		}
	}
	return a.raw([]byte("data: [DONE]\n\n"))
}

// opening writes the first chunk (role assistant, empty content) once.
func (a *oaAnswer) opening() bool {
	if a.started {
		return true
	}
	empty := ""
	return a.chunk(oaDelta{Role: "assistant", Content: &empty}, nil, nil)
}

// fail reports an error: a status before the stream started, an error
// event after.
func (a *oaAnswer) fail(e *apiError) {
	if !a.started {
		writeOAError(a.w, e)
		return
	}
	data, _ := json.Marshal(struct {
		Error oaError `json:"error"`
	}{e.body})
	a.raw(append(append([]byte("data: "), data...), '\n', '\n'))
}

// chunk writes one chat.completion.chunk.
func (a *oaAnswer) chunk(d oaDelta, finish *string, usage *oaUsage) bool {
	return a.write(oaChunk{
		ID: "chatcmpl-" + a.reqID, Object: "chat.completion.chunk", Created: a.created, Model: a.model,
		Choices: []oaChunkChoice{{Delta: d, FinishReason: finish}}, Usage: usage,
	})
}

func (a *oaAnswer) write(v any) bool {
	data, err := json.Marshal(v)
	if err != nil {
		return false
	}
	return a.raw(append(append([]byte("data: "), data...), '\n', '\n'))
}

// raw writes stream bytes and flushes them, each write bounded by the
// edge's WriteTimeout; the first write sends the headers.
func (a *oaAnswer) raw(b []byte) bool {
	rc := http.NewResponseController(a.w)
	first := !a.started
	if first {
		a.started = true
		h := a.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		a.w.WriteHeader(http.StatusOK)
	}
	_ = rc.SetWriteDeadline(time.Now().Add(a.s.cfg.WriteTimeout))
	if _, err := a.w.Write(b); err != nil {
		return false
	}
	if rc.Flush() != nil {
		return false
	}
	if first {
		a.s.metrics.observeFirstChunk(a.start)
		if span := trace.SpanFromContext(a.r.Context()); span.IsRecording() {
			span.AddEvent(eventFirstChunkFlushed)
		}
	}
	return true
}

// openAIBodyLimit is the largest chat completion body read: the stored
// request's limit plus a quarter (the OpenAI form's JSON may be larger
// than the bus form of the same request), and never less than a WebSocket
// message's (ReadLimit).
func (s *Service) openAIBodyLimit() int64 {
	return max(s.cfg.ReadLimit, int64(s.maxRequest)+int64(s.maxRequest)/4)
}
