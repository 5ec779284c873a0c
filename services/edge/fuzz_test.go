package edge

import (
	"encoding/base64"
	"encoding/json"
	"testing"

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
