package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// bedrockOn returns a Bedrock provider whose client talks to fake, signing
// with static credentials.
func bedrockOn(fake *providertest.Bedrock) *Bedrock { return bedrockAt(fake.URL) }

// bedrockAt returns a Bedrock provider whose client talks to the endpoint
// at url, signing with static credentials.
func bedrockAt(url string) *Bedrock {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	}
	return &Bedrock{ProviderName: "br", Client: NewBedrockClient(cfg, url, 0)}
}

// streamAll runs call and returns the deltas emitted.
func streamAll(t *testing.T, b *Bedrock, call *Call) ([]Delta, Result, error) {
	t.Helper()
	var got []Delta
	res, err := b.Stream(context.Background(), call, func(d Delta) error {
		got = append(got, d)
		return nil
	})
	return got, res, err
}

// exact decodes JSON keeping every number's text (json.Number), so that
// comparing two decoded values compares digits, not float64s.
func exact(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// sentBody returns the exactly decoded body of the only request fake got.
func sentBody(t *testing.T, fake *providertest.Bedrock) map[string]any {
	t.Helper()
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake got %d requests, want 1", len(reqs))
	}
	return exact(t, reqs[0].Raw).(map[string]any)
}

// equalJSON fails unless got (exactly decoded) is the JSON want.
func equalJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	if w := exact(t, []byte(want)); !reflect.DeepEqual(got, w) {
		g, _ := json.Marshal(got)
		t.Errorf("%s:\n got  %s\n want %s", what, g, want)
	}
}

// weatherSchema has a bound beyond float64's precision and a decimal that
// float64 cannot hold exactly.
const weatherSchema = `{"type":"object","properties":{"city":{"type":"string"},` +
	`"count":{"type":"integer","maximum":12345678901234567890},"step":{"type":"number","multipleOf":0.1}},"required":["city"]}`

func TestBedrockToolUse(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{
		Chunks: []string{"Let me ", "check again."},
		ToolCalls: []providertest.ToolCall{
			{ID: "tu-1", Name: "get_weather", InputChunks: []string{`{"city":`, `"Oslo","count":`, `12345678901234567890}`}},
			{ID: "tu-2", Name: "clock", InputChunks: []string{`{}`}},
		},
		Usage: &providertest.Usage{InputTokens: 57, OutputTokens: 31},
	})
	defer fake.Close()
	call := &Call{
		Model:     "anthropic.claude-v1",
		MaxTokens: 100,
		Messages: []bus.Message{
			{Role: "user", Content: []bus.ContentBlock{{Text: "Weather in Oslo?"}}},
			{Role: "assistant", Content: []bus.ContentBlock{
				{Text: "Checking."},
				{ToolUse: &bus.ToolUseBlock{ToolUseID: "tu-0", Name: "get_weather", Input: json.RawMessage(`{"city":"Oslo","count":12345678901234567890,"step":0.1}`)}},
			}},
			{Role: "user", Content: []bus.ContentBlock{{ToolResult: &bus.ToolResultBlock{
				ToolUseID: "tu-0",
				Status:    bus.ToolResultError,
				Content: []bus.ToolResultContent{
					{Text: "station offline"},
					{JSON: json.RawMessage(`{"code":12345678901234567890,"temp":-0.1,"tags":[],"ok":false,"note":null,"s":""}`)},
				},
			}}}},
		},
		Tools: &bus.ToolConfig{
			Tools: []bus.Tool{
				{ToolSpec: &bus.ToolSpec{Name: "get_weather", Description: "Current weather.", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(weatherSchema)}}},
				{ToolSpec: &bus.ToolSpec{Name: "clock", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object","properties":{}}`)}}},
			},
			ToolChoice: &bus.ToolChoice{Auto: &struct{}{}},
		},
	}
	got, res, err := streamAll(t, bedrockOn(fake), call)
	if err != nil {
		t.Fatal(err)
	}

	// The request: numbers keep their digits in the schema, the tool
	// input and the JSON tool result; a tool without a description sends
	// none.
	body := sentBody(t, fake)
	equalJSON(t, "toolConfig", body["toolConfig"], `{"tools":[`+
		`{"toolSpec":{"name":"get_weather","description":"Current weather.","inputSchema":{"json":`+weatherSchema+`}}},`+
		`{"toolSpec":{"name":"clock","inputSchema":{"json":{"type":"object","properties":{}}}}}],`+
		`"toolChoice":{"auto":{}}}`)
	equalJSON(t, "messages", body["messages"], `[`+
		`{"role":"user","content":[{"text":"Weather in Oslo?"}]},`+
		`{"role":"assistant","content":[{"text":"Checking."},`+
		`{"toolUse":{"toolUseId":"tu-0","name":"get_weather","input":{"city":"Oslo","count":12345678901234567890,"step":0.1}}}]},`+
		`{"role":"user","content":[{"toolResult":{"toolUseId":"tu-0","status":"error","content":[`+
		`{"text":"station offline"},{"json":{"code":12345678901234567890,"temp":-0.1,"tags":[],"ok":false,"note":null,"s":""}}]}}]}]`)
	raw := fake.Requests()[0].Raw
	if n := bytes.Count(raw, []byte("12345678901234567890")); n != 3 {
		t.Errorf("the large integer appears %d times in the body, want 3 (schema, input, result): %s", n, raw)
	}

	// The answer: text in block 0, then each tool call in a block of its
	// own, its start before its input.
	want := []Delta{
		{Index: 0, Text: "Let me "},
		{Index: 0, Text: "check again."},
		{Index: 1, ToolUse: &bus.ToolUseStart{ToolUseID: "tu-1", Name: "get_weather"}},
		{Index: 1, ToolInput: `{"city":`},
		{Index: 1, ToolInput: `"Oslo","count":`},
		{Index: 1, ToolInput: `12345678901234567890}`},
		{Index: 2, ToolUse: &bus.ToolUseStart{ToolUseID: "tu-2", Name: "clock"}},
		{Index: 2, ToolInput: `{}`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("deltas:\n got  %+v\n want %+v", got, want)
	}
	var input strings.Builder
	for _, d := range got {
		if d.Index == 1 {
			input.WriteString(d.ToolInput)
		}
	}
	equalJSON(t, "tu-1 input", exact(t, []byte(input.String())), `{"city":"Oslo","count":12345678901234567890}`)

	if res.StopReason != StopToolUse {
		t.Errorf("stop reason %q, want %q", res.StopReason, StopToolUse)
	}
	if u := res.Usage; u.InputTokens != 57 || u.OutputTokens != 31 || u.TotalTokens != 88 || u.Estimated {
		t.Errorf("usage %+v, want 57/31 exact from the metadata event", u)
	}
}

func TestBedrockToolChoice(t *testing.T) {
	t.Parallel()
	const clockTools = `[{"toolSpec":{"name":"clock","inputSchema":{"json":{"type":"object"}}}}]`
	tools := func(c *bus.ToolChoice) *bus.ToolConfig {
		return &bus.ToolConfig{
			Tools:      []bus.Tool{{ToolSpec: &bus.ToolSpec{Name: "clock", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object"}`)}}}},
			ToolChoice: c,
		}
	}
	question := bus.Message{Role: "user", Content: []bus.ContentBlock{{Text: "What time is it?"}}}
	toolTurn := []bus.Message{
		question,
		{Role: "assistant", Content: []bus.ContentBlock{{ToolUse: &bus.ToolUseBlock{ToolUseID: "tu-1", Name: "clock", Input: json.RawMessage(`{}`)}}}},
		{Role: "user", Content: []bus.ContentBlock{{ToolResult: &bus.ToolResultBlock{ToolUseID: "tu-1", Content: []bus.ToolResultContent{{Text: "12:00"}}}}}},
	}
	cases := []struct {
		name     string
		tools    *bus.ToolConfig
		messages []bus.Message
		want     string // the toolConfig sent; "" for none
	}{
		{"auto", tools(&bus.ToolChoice{Auto: &struct{}{}}), []bus.Message{question}, `{"tools":` + clockTools + `,"toolChoice":{"auto":{}}}`},
		{"any", tools(&bus.ToolChoice{Any: &struct{}{}}), []bus.Message{question}, `{"tools":` + clockTools + `,"toolChoice":{"any":{}}}`},
		{"named tool", tools(&bus.ToolChoice{Tool: &bus.SpecificTool{Name: "clock"}}), []bus.Message{question}, `{"tools":` + clockTools + `,"toolChoice":{"tool":{"name":"clock"}}}`},
		{"no choice", tools(nil), []bus.Message{question}, `{"tools":` + clockTools + `}`},
		// Bedrock has no "none": without tool blocks the tools are left
		// out, with them Bedrock requires toolConfig, so no choice is sent.
		{"none without tool blocks", tools(&bus.ToolChoice{None: &struct{}{}}), []bus.Message{question}, ""},
		{"none with tool blocks", tools(&bus.ToolChoice{None: &struct{}{}}), toolTurn, `{"tools":` + clockTools + `}`},
		{"no tools", nil, []bus.Message{question}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := providertest.NewBedrock(providertest.Reply{Chunks: []string{"Noon."}, Usage: &providertest.Usage{InputTokens: 9, OutputTokens: 2}})
			defer fake.Close()
			got, res, err := streamAll(t, bedrockOn(fake), &Call{Model: "m", MaxTokens: 10, Messages: tc.messages, Tools: tc.tools})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Text != "Noon." || res.StopReason != StopEndTurn {
				t.Fatalf("deltas %+v, stop %q", got, res.StopReason)
			}
			body := sentBody(t, fake)
			tcfg, sent := body["toolConfig"]
			switch {
			case tc.want == "" && sent:
				t.Fatalf("toolConfig %v sent, want none", tcfg)
			case tc.want != "" && !sent:
				t.Fatal("no toolConfig sent")
			case sent:
				equalJSON(t, "toolConfig", tcfg, tc.want)
			}
			if n := len(body["messages"].([]any)); n != len(tc.messages) {
				t.Fatalf("%d messages sent, want %d", n, len(tc.messages))
			}
		})
	}
}

func TestBedrockToolUseEstimate(t *testing.T) {
	t.Parallel()
	// No usage reported: output is estimated from the text ("ab", 2
	// bytes), the tool's name ("clock", 5) and input (`{"tz":"UTC"}`, 12):
	// 19 bytes, 5 tokens (the text alone would be 1, text and input 4).
	fake := providertest.NewBedrock(providertest.Reply{
		Chunks:    []string{"ab"},
		ToolCalls: []providertest.ToolCall{{ID: "tu-1", Name: "clock", InputChunks: []string{`{"tz":`, `"UTC"}`}}},
	})
	defer fake.Close()
	call := &Call{Model: "m", MaxTokens: 10, Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "What time is it in London?"}}}}}
	got, res, err := streamAll(t, bedrockOn(fake), call)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("deltas %+v, want text, tool start and two input pieces", got)
	}
	in := EstimateInput(call)
	if u := res.Usage; u.OutputTokens != 5 || !u.Estimated || u.InputTokens != in || u.TotalTokens != in+5 {
		t.Fatalf("usage %+v, want estimated %d in, 5 out", u, in)
	}
	if res.StopReason != StopToolUse {
		t.Fatalf("stop reason %q, want %q", res.StopReason, StopToolUse)
	}
}

func TestBedrockToolCallWithoutText(t *testing.T) {
	t.Parallel()
	// A call with no text before it is block 0; a scripted stop reason
	// wins over tool_use.
	fake := providertest.NewBedrock(providertest.Reply{
		ToolCalls:  []providertest.ToolCall{{ID: "tu-9", Name: "clock", InputChunks: []string{`{"tz":"U`}}},
		StopReason: StopMaxTokens,
		Usage:      &providertest.Usage{InputTokens: 5, OutputTokens: 10},
	})
	defer fake.Close()
	got, res, err := streamAll(t, bedrockOn(fake), &Call{Model: "m", MaxTokens: 10, Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "time?"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Delta{
		{Index: 0, ToolUse: &bus.ToolUseStart{ToolUseID: "tu-9", Name: "clock"}},
		{Index: 0, ToolInput: `{"tz":"U`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("deltas:\n got  %+v\n want %+v", got, want)
	}
	if res.StopReason != StopMaxTokens || res.Usage.OutputTokens != 10 || res.Usage.Estimated {
		t.Fatalf("result %+v", res)
	}
}

func TestBedrockRejectsBadToolJSON(t *testing.T) {
	t.Parallel()
	user := func(b bus.ContentBlock) []bus.Message {
		return []bus.Message{{Role: "user", Content: []bus.ContentBlock{b}}}
	}
	spec := func(schema string) *bus.ToolConfig {
		return &bus.ToolConfig{Tools: []bus.Tool{{ToolSpec: &bus.ToolSpec{Name: "t", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(schema)}}}}}
	}
	good := spec(`{"type":"object"}`)
	cases := []struct {
		name string
		call Call
	}{
		{"truncated tool input", Call{Tools: good, Messages: user(bus.ContentBlock{ToolUse: &bus.ToolUseBlock{ToolUseID: "a", Name: "t", Input: json.RawMessage(`{"x":`)}})}},
		{"empty tool input", Call{Tools: good, Messages: user(bus.ContentBlock{ToolUse: &bus.ToolUseBlock{ToolUseID: "a", Name: "t"}})}},
		{"bad result json", Call{Tools: good, Messages: user(bus.ContentBlock{ToolResult: &bus.ToolResultBlock{ToolUseID: "a", Content: []bus.ToolResultContent{{JSON: json.RawMessage(`[1,]`)}}}})}},
		{"schema with trailing data", Call{Tools: spec(`{} {}`), Messages: user(bus.ContentBlock{Text: "hi"})}},
		// Valid JSON, but the SDK's document encoder cannot write it (it
		// would send a malformed body).
		{"empty key in result json", Call{Tools: good, Messages: user(bus.ContentBlock{ToolResult: &bus.ToolResultBlock{ToolUseID: "a", Content: []bus.ToolResultContent{{JSON: json.RawMessage(`{"a":[{"":1}]}`)}}}})}},
		// Bedrock reads image bytes only; chat never sends it a URL.
		{"image url", Call{Messages: user(bus.ContentBlock{Image: &bus.ImageBlock{Source: bus.ImageSource{URL: "https://example.com/a.png"}}})}},
		// Bedrock has no reasoning effort parameter; chat sends it only
		// efforts the model maps to request fields, and none.
		{"unmapped reasoning effort", Call{ReasoningEffort: bus.ReasoningEffortLow, Messages: user(bus.ContentBlock{Text: "hi"})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := providertest.NewBedrock(providertest.Reply{Chunks: []string{"never"}})
			defer fake.Close()
			tc.call.Model, tc.call.MaxTokens = "m", 10
			got, _, err := streamAll(t, bedrockOn(fake), &tc.call)
			var pe *Error
			if !errors.As(err, &pe) || pe.Kind != KindRejected || pe.Provider != "br" {
				t.Fatalf("err %v, want a rejected *Error of br", err)
			}
			if len(got) != 0 || len(fake.Requests()) != 0 {
				t.Fatalf("%d deltas, %d upstream requests after a bad request", len(got), len(fake.Requests()))
			}
		})
	}
}

func FuzzJSONDocument(f *testing.F) {
	f.Add([]byte(`{"n":12345678901234567890,"d":0.1,"e":-1.5e-300,"s":"\u00e9\"","a":[true,null,{}],"o":{}}`))
	f.Add([]byte(`[1,2.50,"x"]`))
	f.Add([]byte(`"just a string"`))
	f.Add([]byte(`{"":{}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		doc, err := jsonDocument(in)
		if err != nil {
			return
		}
		out, err := doc.MarshalSmithyDocument()
		if err != nil {
			t.Fatalf("marshal the document of %s: %v", in, err)
		}
		// The document is the same JSON, each number with the same text.
		if a, b := exact(t, in), exact(t, out); !reflect.DeepEqual(a, b) {
			t.Fatalf("%s became %s", in, out)
		}
	})
}

// TestBedrockImages sends images to the fake: each is an image block with
// its format and its bytes in base64, between the texts around it, and the
// bytes decode to those of the image.
func TestBedrockImages(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{Chunks: []string{"Red."}, Usage: &providertest.Usage{InputTokens: 40, OutputTokens: 2}})
	defer fake.Close()
	pngImg, jpegImg := tinyImage(t, bus.ImagePNG), tinyImage(t, bus.ImageJPEG)
	call := &Call{Model: "m", MaxTokens: 10, Messages: []bus.Message{
		{Role: "user", Content: []bus.ContentBlock{{Text: "What is in this image?"}, {Image: pngImg}, {Text: "One word."}}},
		{Role: "assistant", Content: []bus.ContentBlock{{Text: "Red."}}},
		{Role: "user", Content: []bus.ContentBlock{{Image: jpegImg}, {Text: "And this one?"}}},
	}}
	got, res, err := streamAll(t, bedrockOn(fake), call)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Text != "Red." || res.Usage.InputTokens != 40 {
		t.Fatalf("deltas %+v, result %+v", got, res)
	}
	pngB64 := base64.StdEncoding.EncodeToString(pngImg.Source.Bytes)
	jpegB64 := base64.StdEncoding.EncodeToString(jpegImg.Source.Bytes)
	body := sentBody(t, fake)
	equalJSON(t, "messages", body["messages"], `[`+
		`{"role":"user","content":[{"text":"What is in this image?"},{"image":{"format":"png","source":{"bytes":"`+pngB64+`"}}},{"text":"One word."}]},`+
		`{"role":"assistant","content":[{"text":"Red."}]},`+
		`{"role":"user","content":[{"image":{"format":"jpeg","source":{"bytes":"`+jpegB64+`"}}},{"text":"And this one?"}]}]`)
	if t.Failed() {
		return
	}

	msgs := body["messages"].([]any)
	for _, c := range []struct {
		msg, block int
		img        *bus.ImageBlock
	}{{0, 1, pngImg}, {2, 0, jpegImg}} {
		image := msgs[c.msg].(map[string]any)["content"].([]any)[c.block].(map[string]any)["image"].(map[string]any)
		b, err := base64.StdEncoding.DecodeString(image["source"].(map[string]any)["bytes"].(string))
		if err != nil {
			t.Fatalf("messages[%d] image bytes: %v", c.msg, err)
		}
		if !bytes.Equal(b, c.img.Source.Bytes) {
			t.Fatalf("messages[%d] image decodes to %d bytes unlike the %d sent", c.msg, len(b), len(c.img.Source.Bytes))
		}
	}
}

// closeTracker is a request body that fails reads once closed, as the
// SDK's body does once its operation has its response.
type closeTracker struct {
	r      *strings.Reader
	closed bool
}

func (c *closeTracker) Read(p []byte) (int, error) {
	if c.closed {
		return 0, io.EOF
	}
	return c.r.Read(p)
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

// doFunc is an HTTP client that runs a function.
type doFunc func(*http.Request) (*http.Response, error)

func (f doFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// TestOwnBodyClient: the transport reads a copy of the request body, so
// the SDK closing its body when the response arrives cannot cut the
// transport's write short (and with it the connection of a stream).
func TestOwnBodyClient(t *testing.T) {
	t.Parallel()
	orig := &closeTracker{r: strings.NewReader(`{"messages":[]}`)}
	req, _ := http.NewRequest(http.MethodPost, "http://example.invalid/model/m/converse-stream", orig)
	req.ContentLength = int64(orig.r.Len())
	var sent *http.Request
	c := ownBodyClient{next: doFunc(func(r *http.Request) (*http.Response, error) {
		sent = r
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})}
	if _, err := c.Do(req); err != nil {
		t.Fatal(err)
	}
	_ = req.Body.Close() // what the SDK does once Do returns
	body, err := io.ReadAll(sent.Body)
	if err != nil || string(body) != `{"messages":[]}` || sent.ContentLength != int64(len(body)) || sent == req {
		t.Fatalf("transport's body %q (%v), length %d", body, err, sent.ContentLength)
	}
	again, _ := sent.GetBody()
	if b, _ := io.ReadAll(again); string(b) != `{"messages":[]}` {
		t.Fatalf("GetBody gave %q", b)
	}
}

// TestBedrockCacheUsage: Bedrock's cache reads and writes are both input
// the model read: counted in InputTokens and reported apart.
func TestBedrockCacheUsage(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{Chunks: []string{"ok"},
		Usage: &providertest.Usage{InputTokens: 10, OutputTokens: 3, CacheReadInputTokens: 200, CacheWriteInputTokens: 1500}})
	defer fake.Close()
	_, res, err := streamAll(t, bedrockOn(fake), &Call{Model: "m", MaxTokens: 10,
		Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "hi"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Usage.InputTokens != 1710 || res.CachedInputTokens != 200 || res.CacheWriteInputTokens != 1500 ||
		res.Usage.OutputTokens != 3 || res.Usage.TotalTokens != 1713 || res.Usage.Estimated {
		t.Fatalf("result %+v", res)
	}
}
