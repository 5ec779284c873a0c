package provider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// OpenAIType is the provider type of [OpenAI].
const OpenAIType = "openai"

// MaxSSELineBytes bounds one line of an upstream server-sent event stream.
const MaxSSELineBytes = 1 << 20

// maxErrorBodyBytes bounds how much of an upstream error body is read.
const maxErrorBodyBytes = 64 << 10

// OpenAI streams from an OpenAI-compatible chat completions endpoint
// (OpenAI, vLLM, Ollama, LM Studio, ...) over server-sent events. It always
// requests stream_options.include_usage; when the server still sends no
// usage, tokens are estimated and the result marked so. It is safe for
// concurrent use.
//
// Tools are offered as "function" tools, with the Converse tool choices
// mapped to OpenAI's (any is "required"). In the conversation, toolUse
// blocks become the assistant message's tool_calls and each toolResult
// block a "tool" message; OpenAI has no status for a tool result, so an
// error result's content starts with "error: ". Streamed tool_calls become
// tool-use blocks 1, 2, ... (text is block 0): a start with the call's id
// and name, then its arguments as they come; a fragment of no call is an
// upstream error. An answer with tool calls stops with [StopToolUse] even
// when the server says "stop". Estimated output tokens count tool names
// and arguments.
//
// Reasoning streamed under delta.reasoning_content (DeepSeek, vLLM with a
// reasoning parser, SGLang, LM Studio) or delta.reasoning (OpenRouter,
// Ollama, newer vLLM) becomes [Delta] reasoning pieces, block 0 like the
// text; a chunk with both is read from reasoning_content alone (servers
// moving from one name to the other send the same text under both).
// Estimated output tokens count the reasoning.
//
// A message with images is sent with a content array of "text" and
// "image_url" parts in block order, each image as a base64 data URL (the
// server must accept images for the model; a text-only server refuses
// them); messages without images keep their content a string.
type OpenAI struct {
	// ProviderName is what [OpenAI.Name] returns (the catalog name).
	ProviderName string
	// BaseURL is the API root, e.g. "https://api.openai.com/v1"; the
	// request goes to BaseURL + "/chat/completions".
	BaseURL string
	// APIKey, when set, is sent as "Authorization: Bearer <APIKey>".
	APIKey string
	// Client is the HTTP client; nil means a client without a global
	// timeout (the call's context bounds it).
	Client *http.Client
	// ImageURLs says the server may be sent images by URL, to fetch
	// itself (see [FetchesImages]).
	ImageURLs bool
}

var _ Provider = (*OpenAI)(nil)

// Name implements [Provider].
func (o *OpenAI) Name() string { return o.ProviderName }

// InputTokens implements [Provider]; the count is an estimate until the
// server reports usage.
func (o *OpenAI) InputTokens(call *Call) (int64, bool) { return EstimateInput(call), false }

// oaMessage is one message of a request.
type oaMessage struct {
	Role string `json:"role"`
	// Content is a *string, nil (null) in an assistant message that only
	// calls tools, or the []oaPart of a message with images.
	Content    any          `json:"content"`
	ToolCalls  []oaToolCall `json:"tool_calls,omitempty"`
	ToolCallID string       `json:"tool_call_id,omitempty"`
}

// oaPart is one part of a message's content: text or an image.
type oaPart struct {
	// Type is "text" or "image_url".
	Type     string      `json:"type"`
	Text     string      `json:"text,omitempty"`
	ImageURL *oaImageURL `json:"image_url,omitempty"`
}

// oaImageURL is the image of an "image_url" [oaPart].
type oaImageURL struct {
	// URL is a data URL holding the image, base64.
	URL string `json:"url"`
}

// oaToolCall is a call of a tool in an assistant message.
type oaToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
		// Arguments is the input JSON, as a string.
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// oaTool is a tool offered to the model.
type oaTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	} `json:"function"`
}

// oaNamedTool is the tool_choice that requires one tool.
type oaNamedTool struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

type oaRequest struct {
	Model            string      `json:"model"`
	Messages         []oaMessage `json:"messages"`
	MaxTokens        int         `json:"max_tokens,omitempty"`
	Temperature      *float64    `json:"temperature,omitempty"`
	TopP             *float64    `json:"top_p,omitempty"`
	Stop             []string    `json:"stop,omitempty"`
	Seed             *int64      `json:"seed,omitempty"`
	PresencePenalty  *float64    `json:"presence_penalty,omitempty"`
	FrequencyPenalty *float64    `json:"frequency_penalty,omitempty"`
	Tools            []oaTool    `json:"tools,omitempty"`
	// ToolChoice is "auto", "required", "none" or an [oaNamedTool]; nil
	// leaves the server's default.
	ToolChoice any `json:"tool_choice,omitempty"`
	// ParallelToolCalls is sent only with tools (OpenAI refuses it
	// without).
	ParallelToolCalls *bool             `json:"parallel_tool_calls,omitempty"`
	ResponseFormat    *oaResponseFormat `json:"response_format,omitempty"`
	// ReasoningEffort is the call's effort, unless the model's
	// configuration maps it to request fields.
	ReasoningEffort string `json:"reasoning_effort,omitempty"`
	// LogitBias, Verbosity, User, SafetyIdentifier, PromptCacheKey and
	// ServiceTier are the call's [bus.OpenAIParams], as sent.
	LogitBias        map[string]float64 `json:"logit_bias,omitempty"`
	Verbosity        string             `json:"verbosity,omitempty"`
	User             string             `json:"user,omitempty"`
	SafetyIdentifier string             `json:"safety_identifier,omitempty"`
	PromptCacheKey   string             `json:"prompt_cache_key,omitempty"`
	ServiceTier      string             `json:"service_tier,omitempty"`
	Stream           bool               `json:"stream"`
	StreamOptions    struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type oaUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details,omitempty"`
}

type oaError struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    any    `json:"code"`
}

type oaChunk struct {
	Choices []struct {
		Delta struct {
			Content   *string           `json:"content"`
			ToolCalls []oaToolCallDelta `json:"tool_calls"`
			// ReasoningContent and Reasoning are the two names servers
			// give the model's reasoning (see [OpenAI]).
			ReasoningContent *string `json:"reasoning_content"`
			Reasoning        *string `json:"reasoning"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *oaUsage `json:"usage"`
	Error *oaError `json:"error"`
}

// oaToolCallDelta is a fragment of a streamed tool call: the first of a
// call carries its id and name, the others pieces of its arguments (some
// servers send them all in one).
type oaToolCallDelta struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// oaCalls numbers the tool calls of a stream as content blocks 1, 2, ...
// in the order they open; for OpenAI's tool_calls indexes 0, 1, ... that
// is index+1. A fragment opens a call when its index has none, or when it
// carries an id other than that of the call open at its index (proxies
// that put parallel calls all at index 0 do that); any other fragment
// continues the call open at its index.
type oaCalls struct {
	byIndex map[int]oaCall // allocated at the first call
	n       int            // calls opened
}

// oaCall is a tool call open at a tool_calls index.
type oaCall struct {
	id    string
	block int
}

// errOrphanFragment is an upstream tool call fragment that continues no
// call.
var errOrphanFragment = errors.New("tool call fragment continues no call")

// add returns the block of fragment f and, when f opens a call, the call's
// start. A fragment that would open a call without an id or a name is
// [errOrphanFragment].
func (c *oaCalls) add(f *oaToolCallDelta) (block int, start *bus.ToolUseStart, err error) {
	cur, ok := c.byIndex[f.Index]
	if ok && (f.ID == "" || cur.id == "" || f.ID == cur.id) {
		return cur.block, nil, nil
	}
	if f.ID == "" && f.Function.Name == "" {
		return 0, nil, fmt.Errorf("%w: index %d has no call open and the fragment has no id or name", errOrphanFragment, f.Index)
	}
	if c.byIndex == nil {
		c.byIndex = make(map[int]oaCall)
	}
	c.n++
	c.byIndex[f.Index] = oaCall{id: f.ID, block: c.n}
	return c.n, &bus.ToolUseStart{ToolUseID: f.ID, Name: f.Function.Name}, nil
}

// body encodes the upstream request of call.
//
// A message without tool blocks is one message whose content is its texts
// joined by newlines. In a message with tool blocks, toolUse blocks become
// the message's tool_calls (its content is its texts joined, or null when
// it has none) and each toolResult block becomes a "tool" message before
// it; the message itself is sent only when it has text or tool calls.
//
// A message with images has instead of its joined texts a content array
// of parts in block order (tool blocks aside): a "text" part per non-empty
// text block and an "image_url" part, holding the image as a base64 data
// URL, per image block.
func (o *OpenAI) body(call *Call) ([]byte, error) {
	req := oaRequest{
		Model:       call.Model,
		MaxTokens:   call.MaxTokens,
		Temperature: call.Temperature,
		TopP:        call.TopP,
		Stop:        call.StopSequences,
		Stream:      true,

		Seed:             call.Seed,
		PresencePenalty:  call.PresencePenalty,
		FrequencyPenalty: call.FrequencyPenalty,
	}
	req.StreamOptions.IncludeUsage = true
	if call.Tools != nil {
		req.Tools, req.ToolChoice = oaTools(call.Tools)
		if len(req.Tools) > 0 {
			req.ParallelToolCalls = call.Tools.ParallelToolCalls
		}
	}
	req.ResponseFormat = oaOutput(call.Output)
	if !call.ReasoningMapped {
		req.ReasoningEffort = call.ReasoningEffort
	}
	if p := call.OpenAI; p != nil {
		req.LogitBias, req.Verbosity = p.LogitBias, p.Verbosity
		req.User, req.SafetyIdentifier, req.PromptCacheKey, req.ServiceTier = p.User, p.SafetyIdentifier, p.PromptCacheKey, p.ServiceTier
	}
	// One message per system text block and message, more with tool
	// results. Cache points are not sent: OpenAI-compatible servers cache
	// prompt prefixes by themselves.
	if n := len(call.System) + len(call.Messages); n > 0 {
		req.Messages = make([]oaMessage, 0, n)
	}
	for i := range call.System {
		if s := &call.System[i]; s.CachePoint == nil {
			req.Messages = append(req.Messages, oaMessage{Role: "system", Content: &s.Text})
		}
	}
	for _, m := range call.Messages {
		req.Messages = appendMessage(req.Messages, m)
	}
	body, err := json.Marshal(req)
	if err != nil || len(call.RequestFields) == 0 {
		return body, err
	}
	return withFields(body, call.RequestFields)
}

// withFields adds the fields of the JSON object extra to the JSON object
// body. An empty extra object adds nothing.
func withFields(body, extra json.RawMessage) ([]byte, error) {
	extra = bytes.TrimSpace(extra)
	if len(extra) < 2 || extra[0] != '{' || extra[len(extra)-1] != '}' || len(body) < 2 || body[len(body)-1] != '}' {
		return nil, fmt.Errorf("request fields %.40q are not a JSON object", extra)
	}
	inner := bytes.TrimSpace(extra[1 : len(extra)-1])
	if len(inner) == 0 {
		return body, nil
	}
	out := make([]byte, 0, len(body)+len(inner)+1)
	out = append(out, body[:len(body)-1]...)
	out = append(out, ',')
	out = append(out, inner...)
	return append(out, '}'), nil
}

// oaTools encodes a tool configuration: the tools and the tool_choice (nil
// when tc sets none, or when there is no tool, which OpenAI requires).
func oaTools(tc *bus.ToolConfig) ([]oaTool, any) {
	tools := make([]oaTool, 0, len(tc.Tools))
	for _, t := range tc.Tools {
		if t.ToolSpec == nil {
			continue
		}
		var ot oaTool
		ot.Type = "function"
		ot.Function.Name = t.ToolSpec.Name
		ot.Function.Description = t.ToolSpec.Description
		ot.Function.Parameters = t.ToolSpec.InputSchema.JSON
		tools = append(tools, ot)
	}
	if len(tools) == 0 {
		return nil, nil
	}
	var choice any
	switch c := tc.ToolChoice; {
	case c == nil:
	case c.Auto != nil:
		choice = "auto"
	case c.Any != nil:
		choice = "required"
	case c.None != nil:
		choice = "none"
	case c.Tool != nil:
		named := oaNamedTool{Type: "function"}
		named.Function.Name = c.Tool.Name
		choice = named
	}
	return tools, choice
}

// appendMessage appends the messages that encode m (see [OpenAI.body]).
func appendMessage(msgs []oaMessage, m bus.Message) []oaMessage {
	tools, images := blockKinds(m)
	if !tools {
		if images {
			return append(msgs, oaMessage{Role: m.Role, Content: oaParts(m)})
		}
		texts := make([]string, 0, len(m.Content))
		for _, b := range m.Content {
			// Reasoning and cache points are not sent (see
			// bus.ContentBlock).
			if b.ReasoningContent == nil && b.CachePoint == nil {
				texts = append(texts, b.Text)
			}
		}
		content := strings.Join(texts, "\n")
		return append(msgs, oaMessage{Role: m.Role, Content: &content})
	}
	var texts []string
	var calls []oaToolCall
	for _, b := range m.Content {
		switch {
		case b.ToolResult != nil:
			content := toolResultText(b.ToolResult)
			msgs = append(msgs, oaMessage{Role: "tool", Content: &content, ToolCallID: b.ToolResult.ToolUseID})
		case b.ToolUse != nil:
			c := oaToolCall{ID: b.ToolUse.ToolUseID, Type: "function"}
			c.Function.Name = b.ToolUse.Name
			c.Function.Arguments = string(b.ToolUse.Input)
			calls = append(calls, c)
		case b.Text != "" && !images:
			texts = append(texts, b.Text)
		}
	}
	msg := oaMessage{Role: m.Role, ToolCalls: calls}
	switch {
	case images:
		msg.Content = oaParts(m)
	case len(texts) > 0:
		content := strings.Join(texts, "\n")
		msg.Content = &content
	case len(calls) == 0:
		return msgs
	}
	return append(msgs, msg)
}

// blockKinds reports whether m holds a toolUse or toolResult block, and
// whether it holds an image.
func blockKinds(m bus.Message) (tools, images bool) {
	for _, b := range m.Content {
		tools = tools || b.ToolUse != nil || b.ToolResult != nil
		images = images || b.Image != nil
	}
	return tools, images
}

// oaParts returns the content parts of m's text and image blocks, in
// order; empty texts and tool blocks have none.
func oaParts(m bus.Message) []oaPart {
	parts := make([]oaPart, 0, len(m.Content))
	for _, b := range m.Content {
		switch {
		case b.Image != nil:
			parts = append(parts, oaPart{Type: "image_url", ImageURL: &oaImageURL{URL: dataURL(b.Image)}})
		case b.ToolUse != nil, b.ToolResult != nil:
		case b.Text != "":
			parts = append(parts, oaPart{Type: "text", Text: b.Text})
		}
	}
	return parts
}

// dataURL returns the URL of img's image_url part: its http(s) URL, or
// "data:<media type>;base64,<bytes in standard base64>".
func dataURL(img *bus.ImageBlock) string {
	if img.Source.URL != "" {
		return img.Source.URL // the server fetches it
	}
	mt := img.MediaType()
	var sb strings.Builder
	sb.Grow(len("data:;base64,") + len(mt) + base64.StdEncoding.EncodedLen(len(img.Source.Bytes)))
	sb.WriteString("data:")
	sb.WriteString(mt)
	sb.WriteString(";base64,")
	enc := base64.NewEncoder(base64.StdEncoding, &sb)
	enc.Write(img.Source.Bytes) // a strings.Builder does not fail
	enc.Close()
	return sb.String()
}

// toolResultText is the content of the "tool" message of r: its text and
// JSON pieces (as written) joined by newlines. OpenAI has no status for a
// tool result, so an error result's content is prefixed with "error: ".
func toolResultText(r *bus.ToolResultBlock) string {
	var sb strings.Builder
	if r.Status == bus.ToolResultError {
		sb.WriteString("error: ")
	}
	sep := ""
	for _, c := range r.Content {
		if c.Text != "" {
			sb.WriteString(sep)
			sb.WriteString(c.Text)
			sep = "\n"
		}
		if len(c.JSON) > 0 {
			sb.WriteString(sep)
			sb.Write(c.JSON)
			sep = "\n"
		}
	}
	return sb.String()
}

// Stream implements [Provider].
func (o *OpenAI) Stream(ctx context.Context, call *Call, emit func(Delta) error) (Result, error) {
	res := Result{StopReason: StopEndTurn}
	res.Usage.InputTokens = EstimateInput(call)
	body, err := o.body(call)
	if err != nil {
		return res, o.fail(KindRejected, 0, "encode request", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(o.BaseURL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return res, o.fail(KindRejected, 0, "build request", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	if o.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+o.APIKey)
	}
	client := o.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("%s: %w", o.ProviderName, ctx.Err())
		}
		return res, o.fail(KindUnavailable, 0, "", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return res, o.httpError(resp)
	}

	outBytes := 0 // of text, reasoning, tool names and arguments: the estimate's base
	var calls oaCalls
	var usage *oaUsage
	streamErr := readSSE(resp.Body, func(data []byte) error {
		if string(data) == "[DONE]" {
			return errSSEDone
		}
		var c oaChunk
		if err := json.Unmarshal(data, &c); err != nil {
			return o.fail(KindUpstream, 0, "undecodable stream chunk", err)
		}
		if c.Error != nil {
			kind := KindUpstream
			if c.Error.Type == "rate_limit_exceeded" || c.Error.Code == "rate_limit_exceeded" {
				kind = KindThrottled
			}
			return o.fail(kind, 0, c.Error.Message, nil)
		}
		if c.Usage != nil {
			usage = c.Usage
		}
		for _, ch := range c.Choices {
			r := ch.Delta.ReasoningContent
			if r == nil || *r == "" {
				r = ch.Delta.Reasoning
			}
			if r != nil && *r != "" {
				outBytes += len(*r)
				if err := emit(Delta{Reasoning: *r}); err != nil {
					return fmt.Errorf("emit: %w", err)
				}
			}
			if ch.Delta.Content != nil && *ch.Delta.Content != "" {
				outBytes += len(*ch.Delta.Content)
				if err := emit(Delta{Text: *ch.Delta.Content}); err != nil {
					return fmt.Errorf("emit: %w", err)
				}
			}
			for i := range ch.Delta.ToolCalls {
				f := &ch.Delta.ToolCalls[i]
				block, start, err := calls.add(f)
				if err != nil {
					return o.fail(KindUpstream, 0, err.Error(), err)
				}
				if start != nil {
					outBytes += len(start.Name)
					if err := emit(Delta{Index: block, ToolUse: start}); err != nil {
						return fmt.Errorf("emit: %w", err)
					}
				}
				if a := f.Function.Arguments; a != "" {
					outBytes += len(a)
					if err := emit(Delta{Index: block, ToolInput: a}); err != nil {
						return fmt.Errorf("emit: %w", err)
					}
				}
			}
			if ch.FinishReason != nil {
				res.StopReason = finishToStop(*ch.FinishReason)
			}
		}
		return nil
	})
	if usage != nil {
		res.Usage.InputTokens = usage.PromptTokens
		res.Usage.OutputTokens = usage.CompletionTokens
		if d := usage.PromptTokensDetails; d != nil {
			res.CachedInputTokens = d.CachedTokens
		}
	} else {
		res.Usage.OutputTokens = int64((outBytes + bytesPerToken - 1) / bytesPerToken)
		res.Usage.Estimated = true
	}
	res.Usage.TotalTokens = res.Usage.InputTokens + res.Usage.OutputTokens
	// Some servers finish an answer that calls tools with "stop" (gpt-4o
	// has, so have vLLM with a named tool_choice and Ollama): it still
	// calls them.
	if calls.n > 0 && res.StopReason == StopEndTurn {
		res.StopReason = StopToolUse
	}
	switch {
	case errors.Is(streamErr, errSSEDone), streamErr == nil:
		return res, nil
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s: %w", o.ProviderName, ctx.Err())
	}
	var pe *Error
	if errors.As(streamErr, &pe) {
		return res, streamErr
	}
	return res, o.fail(KindUnavailable, 0, "stream broken", streamErr)
}

// finishToStop maps an OpenAI finish_reason to a stop reason.
func finishToStop(r string) string {
	switch r {
	case "length":
		return StopMaxTokens
	case "content_filter":
		return StopContentFilter
	case "tool_calls", "function_call": // function_call: the legacy functions API
		return StopToolUse
	}
	return StopEndTurn
}

func (o *OpenAI) fail(kind Kind, status int, msg string, err error) *Error {
	return &Error{Provider: o.ProviderName, Kind: kind, Status: status, Message: msg, Err: err}
}

// httpError reads an error response: OpenAI's {"error":{"message"}} or
// any text.
func (o *OpenAI) httpError(resp *http.Response) *Error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	msg := strings.TrimSpace(string(raw))
	var body struct {
		Error *oaError `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != nil && body.Error.Message != "" {
		msg = body.Error.Message
	}
	e := o.fail(statusKind(resp.StatusCode), resp.StatusCode, msg, nil)
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	return e
}

// parseRetryAfter reads a Retry-After header in seconds; dates and junk
// give 0.
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// errSSEDone ends reading at the [DONE] sentinel.
var errSSEDone = errors.New("sse: done")

// readSSE reads server-sent events from r and calls onData with the data
// of each event (multi-line data joined by newlines), until r ends or
// onData fails. Comments, event names, ids and retry fields are ignored.
// A line longer than [MaxSSELineBytes] is an error.
func readSSE(r io.Reader, onData func([]byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxSSELineBytes)
	var data []byte
	have := false
	dispatch := func() error {
		if !have {
			return nil
		}
		d := data
		data, have = data[:0], false
		return onData(d)
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if err := dispatch(); err != nil {
				return err
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if string(field) != "data" {
			continue
		}
		if have {
			data = append(data, '\n')
		}
		data = append(data, value...)
		have = true
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return dispatch()
}
