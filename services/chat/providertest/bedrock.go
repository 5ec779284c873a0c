package providertest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Bedrock is a fake Amazon Bedrock runtime endpoint serving
// POST /model/{modelId}/converse-stream. Point a bedrockruntime client at
// URL with BaseEndpoint. It rejects requests that are not SigV4-signed.
//
// A reply streams its text chunks as block 0, then each tool call as the
// next block (contentBlockStart with the toolUse, a delta per input chunk,
// contentBlockStop, with ChunkDelay before each input chunk), ending with
// stop reason tool_use unless the reply names another. A throttle after
// all chunks, and a hang, come after the tool calls.
//
// A reply with reasoning streams it first, as reasoning models do: block 0
// holds a reasoningContent text delta per piece, then a signature delta
// ([ReasoningSignature] of the joined text), then stops; RedactedReasoning
// is the next block, one redactedContent delta; the text is then the next
// block and the tool calls follow. ChunkDelay comes before every reasoning
// piece and text chunk but the first sent.
//
// Like Claude with extended thinking, a request whose
// additionalModelRequestFields enable thinking and whose last message
// holds tool results is refused (400 ValidationException) unless the
// assistant message before it starts with a reasoning block carrying a
// signature this fake issued for that text, or redacted content.
type Bedrock struct {
	*script
	// URL is the endpoint's base URL.
	URL string
	srv *httptest.Server
}

// NewBedrock starts a fake Bedrock endpoint answering def when no reply is
// queued. Close it when done.
func NewBedrock(def Reply) *Bedrock {
	b := &Bedrock{script: newScript(def)}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	b.URL = b.srv.URL
	return b
}

// Close shuts the server down.
func (b *Bedrock) Close() { b.srv.Close() }

func (b *Bedrock) serve(w http.ResponseWriter, r *http.Request) {
	end := b.begin()
	defer end()
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/model/") || !strings.HasSuffix(r.URL.Path, "/converse-stream") {
		restError(w, http.StatusNotFound, "UnknownOperationException", "unknown operation "+r.Method+" "+r.URL.Path)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		restError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "request is not SigV4-signed")
		return
	}
	rep := b.next(r, body)
	if msg := thinkingViolation(body); msg != "" {
		restError(w, http.StatusBadRequest, "ValidationException", msg)
		return
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		if rep.RetryAfter != "" {
			w.Header().Set("Retry-After", rep.RetryAfter)
		}
		code := "InternalServerException"
		switch {
		case rep.Status == http.StatusTooManyRequests:
			code = "ThrottlingException"
		case rep.Status == http.StatusServiceUnavailable:
			code = "ServiceUnavailableException"
		case rep.Status == http.StatusBadRequest:
			code = "ValidationException"
		}
		restError(w, rep.Status, code, "fake bedrock: scripted "+code)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set("X-Amzn-Requestid", "fake-request")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := eventstream.NewEncoder()
	ctx := r.Context()
	send := func(msgType, typeHeader, name string, payload any) bool {
		data, _ := json.Marshal(payload)
		var hs eventstream.Headers
		hs.Set(":message-type", eventstream.StringValue(msgType))
		hs.Set(typeHeader, eventstream.StringValue(name))
		hs.Set(":content-type", eventstream.StringValue("application/json"))
		var buf bytes.Buffer
		if err := enc.Encode(&buf, eventstream.Message{Headers: hs, Payload: data}); err != nil {
			return false
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return ctx.Err() == nil
	}
	event := func(name string, payload any) bool { return send("event", ":event-type", name, payload) }
	ok := event("messageStart", map[string]any{"role": "assistant"})
	// Reasoning is a block of its own before the answer's (block 0): its
	// text in pieces, then the signature that would let a client send it
	// back, then its stop. The text is then the next block.
	textBlock := 0
	if len(rep.Reasoning) > 0 {
		textBlock = 1
		for i, r := range rep.Reasoning {
			ok = ok && (i == 0 || pause(ctx, rep.ChunkDelay)) &&
				event("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]any{"reasoningContent": map[string]any{"text": r}}})
		}
		sig := ReasoningSignature(strings.Join(rep.Reasoning, ""))
		ok = ok && event("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]any{"reasoningContent": map[string]any{"signature": sig}}})
		ok = ok && event("contentBlockStop", map[string]any{"contentBlockIndex": 0})
	}
	if len(rep.RedactedReasoning) > 0 {
		// A blob is base64 in the event's JSON, as json.Marshal writes []byte.
		ok = ok && event("contentBlockDelta", map[string]any{"contentBlockIndex": textBlock, "delta": map[string]any{"reasoningContent": map[string]any{"redactedContent": rep.RedactedReasoning}}})
		ok = ok && event("contentBlockStop", map[string]any{"contentBlockIndex": textBlock})
		textBlock++
	}
	for i, c := range rep.Chunks {
		if !ok {
			break
		}
		if rep.Throttle && i == rep.ThrottleAfter {
			send("exception", ":exception-type", "throttlingException", map[string]any{"message": "Too many tokens, please wait before trying again."})
			return
		}
		if (i > 0 || textBlock > 0) && !pause(ctx, rep.ChunkDelay) {
			ok = false
			break
		}
		ok = event("contentBlockDelta", map[string]any{"contentBlockIndex": textBlock, "delta": map[string]any{"text": c}})
	}
	// Tool calls follow the text as Bedrock streams them: the text block
	// stops, then each call is a block of its own that starts, streams its
	// input and stops.
	if ok && len(rep.ToolCalls) > 0 {
		first := textBlock
		if len(rep.Chunks) > 0 {
			first = textBlock + 1
			ok = event("contentBlockStop", map[string]any{"contentBlockIndex": textBlock})
		}
		for k, tc := range rep.ToolCalls {
			i := first + k
			ok = ok && event("contentBlockStart", map[string]any{"contentBlockIndex": i, "start": map[string]any{"toolUse": map[string]any{"toolUseId": tc.ID, "name": tc.Name}}})
			for _, in := range tc.InputChunks {
				ok = ok && pause(ctx, rep.ChunkDelay) && event("contentBlockDelta", map[string]any{"contentBlockIndex": i, "delta": map[string]any{"toolUse": map[string]any{"input": in}}})
			}
			ok = ok && event("contentBlockStop", map[string]any{"contentBlockIndex": i})
		}
	}
	if ok && rep.Throttle && rep.ThrottleAfter >= len(rep.Chunks) {
		send("exception", ":exception-type", "throttlingException", map[string]any{"message": "Too many tokens, please wait before trying again."})
		return
	}
	if ok && rep.Hang {
		<-ctx.Done()
		ok = false
	}
	if !ok {
		b.markCancelled()
		return
	}
	stop := rep.StopReason
	switch {
	case stop != "":
	case len(rep.ToolCalls) > 0:
		stop = "tool_use"
	default:
		stop = "end_turn"
	}
	if len(rep.ToolCalls) == 0 {
		event("contentBlockStop", map[string]any{"contentBlockIndex": textBlock})
	}
	event("messageStop", map[string]any{"stopReason": stop})
	md := map[string]any{"metrics": map[string]any{"latencyMs": 1}}
	if u := rep.Usage; u != nil {
		usage := map[string]any{"inputTokens": u.InputTokens, "outputTokens": u.OutputTokens, "totalTokens": u.InputTokens + u.OutputTokens + u.CacheReadInputTokens + u.CacheWriteInputTokens}
		if u.CacheReadInputTokens > 0 {
			usage["cacheReadInputTokens"] = u.CacheReadInputTokens
		}
		if u.CacheWriteInputTokens > 0 {
			usage["cacheWriteInputTokens"] = u.CacheWriteInputTokens
			// The breakdown by TTL, 1h before 5m, as Bedrock sorts it.
			var details []map[string]any
			if u.CacheWrite1hInputTokens > 0 {
				details = append(details, map[string]any{"ttl": "1h", "inputTokens": u.CacheWrite1hInputTokens})
			}
			if n := u.CacheWriteInputTokens - u.CacheWrite1hInputTokens; n > 0 {
				details = append(details, map[string]any{"ttl": "5m", "inputTokens": n})
			}
			usage["cacheDetails"] = details
		}
		md["usage"] = usage
	}
	end()
	event("metadata", md)
}

// restError writes a REST-JSON error the way Bedrock does.
func restError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", code+":http://internal.amazon.com/coral/com.amazon.bedrock/")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"message":%q}`, msg)
}

// ReasoningSignature is the signature the fake issues for reasoning text
// and checks when the text comes back: it changes with every byte of the
// text, as a real one would not verify altered reasoning.
func ReasoningSignature(text string) string {
	sum := sha256.Sum256([]byte(text))
	return "fake-sig-" + hex.EncodeToString(sum[:12])
}

// thinkingViolation returns Claude's refusal of a request with extended
// thinking whose tool results do not follow a turn that starts with its
// reasoning, or "" when the request is acceptable.
func thinkingViolation(body []byte) string {
	var req struct {
		Fields struct {
			Thinking struct {
				Type string `json:"type"`
			} `json:"thinking"`
		} `json:"additionalModelRequestFields"`
		Messages []struct {
			Role    string `json:"role"`
			Content []struct {
				ToolResult       json.RawMessage `json:"toolResult"`
				ToolUse          json.RawMessage `json:"toolUse"`
				ReasoningContent *struct {
					ReasoningText *struct {
						Text      string `json:"text"`
						Signature string `json:"signature"`
					} `json:"reasoningText"`
					RedactedContent []byte `json:"redactedContent"`
				} `json:"reasoningContent"`
			} `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &req) != nil || req.Fields.Thinking.Type != "enabled" || len(req.Messages) < 2 {
		return ""
	}
	last := req.Messages[len(req.Messages)-1]
	results := false
	for _, c := range last.Content {
		results = results || c.ToolResult != nil
	}
	prev := req.Messages[len(req.Messages)-2]
	if !results || prev.Role != "assistant" || len(prev.Content) == 0 {
		return ""
	}
	first := prev.Content[0]
	i := len(req.Messages) - 2
	switch rc := first.ReasoningContent; {
	case rc == nil:
		found := "text"
		if first.ToolUse != nil {
			found = "tool_use"
		}
		return fmt.Sprintf("messages.%d.content.0.type: Expected `thinking` or `redacted_thinking`, but found `%s`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns.", i, found)
	case rc.ReasoningText != nil && rc.ReasoningText.Signature != ReasoningSignature(rc.ReasoningText.Text):
		return fmt.Sprintf("messages.%d.content.0: Invalid `signature` in `thinking` block", i)
	case rc.ReasoningText == nil && len(rc.RedactedContent) == 0:
		return fmt.Sprintf("messages.%d.content.0: empty reasoning block", i)
	}
	return ""
}
