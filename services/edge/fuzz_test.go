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
			for _, tool := range tc.Tools {
				if raw := tool.ToolSpec.InputSchema.JSON; len(raw) == 0 || raw[0] != '{' {
					t.Fatalf("accepted schema %q", raw)
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
