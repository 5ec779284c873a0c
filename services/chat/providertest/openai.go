package providertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"
)

// OpenAI is a fake OpenAI-compatible server serving
// POST /v1/chat/completions with "stream": true as server-sent events
// (chat.completion.chunk objects: the reasoning pieces under
// delta.reasoning_content, as DeepSeek and vLLM send them, then the text
// chunks, then each tool call under delta.tool_calls, a first fragment
// with its id and name and one fragment per input chunk, then a usage
// chunk when stream_options.include_usage is set and the reply has usage,
// then "data: [DONE]"). ChunkDelay comes before every piece but the first
// sent. A reply with tool calls finishes with "tool_calls" unless it sets
// StopReason. Errors use OpenAI's {"error":{...}} body.
type OpenAI struct {
	*script
	// URL is the API root to configure as a base URL (ends in /v1).
	URL string
	srv *httptest.Server
}

// NewOpenAI starts a fake OpenAI-compatible server answering def when no
// reply is queued. Close it when done.
func NewOpenAI(def Reply) *OpenAI {
	o := &OpenAI{script: newScript(def)}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	o.URL = o.srv.URL + "/v1"
	return o
}

// Close shuts the server down.
func (o *OpenAI) Close() { o.srv.Close() }

func oaError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": typ}})
}

func (o *OpenAI) serve(w http.ResponseWriter, r *http.Request) {
	end := o.begin()
	defer end()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		oaError(w, http.StatusNotFound, "invalid_request_error", "unknown path "+r.URL.Path)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		oaError(w, http.StatusBadRequest, "invalid_request_error", "body is not JSON: "+err.Error())
		return
	}
	rep := o.next(r, body)
	if rep.Status != 0 && rep.Status != http.StatusOK {
		if rep.RetryAfter != "" {
			w.Header().Set("Retry-After", rep.RetryAfter)
		}
		typ := "server_error"
		if rep.Status == http.StatusTooManyRequests {
			typ = "rate_limit_exceeded"
		}
		oaError(w, rep.Status, typ, fmt.Sprintf("fake openai: scripted %d", rep.Status))
		return
	}
	if !req.Stream {
		oaError(w, http.StatusBadRequest, "invalid_request_error", "this fake only streams")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	ctx := r.Context()
	created := time.Now().Unix()
	write := func(v any) bool {
		data, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return ctx.Err() == nil
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{
			"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		}
	}
	throttle := func() {
		write(map[string]any{"error": map[string]any{"message": "Rate limit reached", "type": "rate_limit_exceeded", "code": "rate_limit_exceeded"}})
	}
	ok := write(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	for i, r := range rep.Reasoning {
		ok = ok && (i == 0 || pause(ctx, rep.ChunkDelay)) && write(chunk(map[string]any{"reasoning_content": r}, nil))
	}
	for i, c := range rep.Chunks {
		if !ok {
			break
		}
		if rep.Throttle && i == rep.ThrottleAfter {
			throttle()
			return
		}
		if (i > 0 || len(rep.Reasoning) > 0) && !pause(ctx, rep.ChunkDelay) {
			ok = false
			break
		}
		ok = write(chunk(map[string]any{"content": c}, nil))
	}
	if ok && rep.Throttle && rep.ThrottleAfter >= len(rep.Chunks) {
		throttle()
		return
	}
	// Tool calls as api.openai.com streams them: a first fragment with the
	// call's id, type, name and empty arguments, then the arguments in
	// pieces under the same index.
	for k, tc := range rep.ToolCalls {
		if !ok {
			break
		}
		if (k > 0 || len(rep.Chunks) > 0 || len(rep.Reasoning) > 0) && !pause(ctx, rep.ChunkDelay) {
			ok = false
			break
		}
		ok = write(chunk(map[string]any{"tool_calls": []any{map[string]any{
			"index": k, "id": tc.ID, "type": "function", "function": map[string]any{"name": tc.Name, "arguments": ""},
		}}}, nil))
		for _, in := range tc.InputChunks {
			if !ok || !pause(ctx, rep.ChunkDelay) {
				ok = false
				break
			}
			ok = write(chunk(map[string]any{"tool_calls": []any{map[string]any{
				"index": k, "function": map[string]any{"arguments": in},
			}}}, nil))
		}
	}
	if ok && rep.Hang {
		<-ctx.Done()
		ok = false
	}
	if !ok {
		o.markCancelled()
		return
	}
	finish := rep.StopReason
	switch {
	case finish != "":
	case len(rep.ToolCalls) > 0:
		finish = "tool_calls"
	default:
		finish = "stop"
	}
	write(chunk(map[string]any{}, finish))
	if rep.Usage != nil && req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		u := map[string]any{
			"prompt_tokens": rep.Usage.InputTokens, "completion_tokens": rep.Usage.OutputTokens,
			"total_tokens": rep.Usage.InputTokens + rep.Usage.OutputTokens,
		}
		if rep.Usage.CacheReadInputTokens > 0 {
			u["prompt_tokens_details"] = map[string]any{"cached_tokens": rep.Usage.CacheReadInputTokens}
		}
		write(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": req.Model, "choices": []any{}, "usage": u})
	}
	end()
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}
