package edge

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
)

// FuzzClientInput feeds arbitrary bytes through what the edge decodes from
// a client before any authorization: the header- subprotocol and a publish
// frame's channel and events. It must never panic, and whatever it accepts
// must satisfy the limits: at most MaxEventsPerPublish events, each valid
// JSON of at most MaxEventBytes, on a channel that parses.
func FuzzClientInput(f *testing.F) {
	f.Add([]byte(`{"type":"publish","id":"p","channel":"/Inbound-Messages/alice","events":["{\"a\":1}","\"s\""]}`))
	f.Add([]byte(`{"type":"publish","id":"p","channel":"/a/*","events":["1","2","3","4","5","6"]}`))
	f.Add([]byte(`{"type":"publish","channel":"a/b","events":[{"x":1}],"authorization":{"Authorization":"Bearer t"}}`))
	f.Add([]byte(base64.RawURLEncoding.EncodeToString([]byte(`{"host":"h","Authorization":"t"}`))))
	s := &Service{cfg: Config{MaxEventBytes: 64, MaxEventsPerPublish: 3}.withDefaults()}
	f.Fuzz(func(t *testing.T, data []byte) {
		if auth, err := decodeHeaderSubprotocol(string(data)); err == nil {
			_ = credentialFromAuthorization(auth)
		}
		fr, err := protocol.ParseFrame(data)
		if err != nil {
			return
		}
		_ = credentialFromAuthorization(fr.Authorization)
		ch, payloads, perr := s.validatePublish(fr.Channel, fr.HasEvents, fr.Events)
		if perr != nil {
			if perr.ErrorType == "" || perr.Message == "" {
				t.Fatalf("unspecific error %+v", perr)
			}
			return
		}
		if ch.String() == "" || len(payloads) == 0 || len(payloads) > s.cfg.MaxEventsPerPublish {
			t.Fatalf("accepted channel %q with %d events", ch.String(), len(payloads))
		}
		for i, p := range payloads {
			if len(p) > s.cfg.MaxEventBytes || !json.Valid(p) {
				t.Fatalf("accepted event %d: %q", i, p)
			}
		}
	})
}

// FuzzOpenAIRequest feeds chat completion bodies to the OpenAI
// translation: it either refuses with a 400 naming a parameter, or gives a
// request that survives the bus's encoding, has a user message, whose
// tool inputs and schemas are JSON objects, whose reasoning effort is
// none or an accepted one and whose OpenAI parameters, if any, are set
// and valid.
func FuzzOpenAIRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"r"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"f"}}}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"s"}]},{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"g"}}],"tool_choice":"required","response_format":{"type":"text"},"stop":["a"]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"a","thinking_blocks":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"redacted_thinking","data":"AAH6"}]},{"role":"user","content":"y"}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"low"}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"50256":-100,"1734":2.5},"verbosity":"low","user":"u","safety_identifier":"s","prompt_cache_key":"k","service_tier":"flex","store":true,"metadata":{"a":"b"}}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"007":1e2,"":0,"9":null}}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}]},{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]},{"role":"assistant","content":"a","tool_calls":[{"id":"c1","type":"function","function":{"name":"f"}}]},{"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"r","cache_control":{"type":"ephemeral"}}]}],"tools":[{"type":"function","function":{"name":"f"},"cache_control":{"type":"ephemeral"}}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}]},{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral","ttl":"1h"}},{"type":"text","text":"y","cache_control":{"type":"other"}}]}],"tools":[{"type":"function","function":{"name":"f"},"cache_control":{"type":"ephemeral"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r oaChatRequest
		if json.Unmarshal(data, &r) != nil {
			return
		}
		out, aerr := r.toChatRequest()
		if aerr != nil {
			if aerr.status != 400 || aerr.body.Param == nil || aerr.body.Message == "" {
				t.Fatalf("unspecific refusal %+v", aerr)
			}
			return
		}
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("accepted request does not encode: %v", err)
		}
		back, err := bus.DecodeChatRequest(b)
		if err != nil || len(back.Messages) == 0 || back.ModelID == "" {
			t.Fatalf("accepted request %s decodes to %+v, %v", b, back, err)
		}
		if e := out.ReasoningEffort; e != "" && !bus.ValidReasoningEffort(e) {
			t.Fatalf("accepted reasoning effort %q", e)
		}
		if p := back.OpenAIParams; p != nil && (p.IsZero() || p.Validate() != nil) {
			t.Fatalf("accepted OpenAI parameters %+v: %v", p, p.Validate())
		}
		if tc := out.ToolConfig; tc != nil {
			for i, tool := range tc.Tools {
				if c := tool.CachePoint; c != nil {
					// A cache point follows the tool that asked for it.
					if tool.ToolSpec != nil || c.Type != bus.CachePointDefault || i == 0 || tc.Tools[i-1].CachePoint != nil {
						t.Fatalf("accepted tools %+v", tc.Tools)
					}
					continue
				}
				if raw := tool.ToolSpec.InputSchema.JSON; len(raw) == 0 || raw[0] != '{' {
					t.Fatalf("accepted schema %q", raw)
				}
			}
		}
		for _, blocks := range append([][]bus.ContentBlock{out.System}, contents(out.Messages)...) {
			for i, blk := range blocks {
				// A cache point follows the part that asked for it.
				if c := blk.CachePoint; c != nil && (c.Type != bus.CachePointDefault || i == 0 || blocks[i-1].CachePoint != nil || blk.Text != "") {
					t.Fatalf("accepted blocks %+v", blocks)
				}
			}
		}
		for _, m := range out.Messages {
			for _, blk := range m.Content {
				if u := blk.ToolUse; u != nil && (!json.Valid(u.Input) || u.Input[0] != '{') {
					t.Fatalf("accepted tool input %q", u.Input)
				}
			}
		}
	})
}

// contents returns the content of each message.
func contents(msgs []bus.Message) [][]bus.ContentBlock {
	out := make([][]bus.ContentBlock, len(msgs))
	for i, m := range msgs {
		out[i] = m.Content
	}
	return out
}
