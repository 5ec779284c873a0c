package chat

import (
	"bytes"
	"encoding/json"
	"log/slog"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
	"github.com/nats-io/nats.go"
)

// emitter publishes the events of one answer, in order, numbering them.
// It is used by one goroutine. It encodes every event into the same
// buffer (Publish copies it), so events cost no allocation of their own.
type emitter struct {
	nc      *nats.Conn
	log     *slog.Logger
	subject string
	convID  string
	reqID   string
	seq     int
	buf     bytes.Buffer
	enc     *json.Encoder // on buf; created by the first emit
}

// emit stamps ev with the request's ids and the next sequence number and
// publishes it. A failure is logged: the answer goes on, since usage must
// still be recorded.
func (e *emitter) emit(ev bus.Event) {
	ev.ConversationID = e.convID
	ev.RequestID = e.reqID
	ev.Seq = e.seq
	e.seq++
	if e.enc == nil {
		e.enc = json.NewEncoder(&e.buf) // escapes HTML like json.Marshal
	}
	e.buf.Reset()
	if err := e.enc.Encode(ev); err != nil {
		e.log.Error("encode event", "err", err, "seq", ev.Seq)
		return
	}
	data := bytes.TrimSuffix(e.buf.Bytes(), []byte{'\n'}) // Encode's newline
	if err := e.nc.Publish(e.subject, data); err != nil {
		e.log.Warn("publish event", "err", err, "subject", e.subject, "seq", ev.Seq)
	}
}

// delta publishes one piece of the answer: a text, reasoning or tool input
// delta, or the start of a tool-use block.
func (e *emitter) delta(d provider.Delta) error {
	switch {
	case d.ToolUse != nil:
		e.emit(bus.Event{ContentBlockStart: &bus.ContentBlockStart{Start: bus.BlockStart{ToolUse: d.ToolUse}, ContentBlockIndex: d.Index}})
	case d.ToolInput != "":
		e.emit(bus.Event{ContentBlockDelta: &bus.ContentBlockDelta{Delta: bus.Delta{ToolUse: &bus.ToolUseDelta{Input: d.ToolInput}}, ContentBlockIndex: d.Index}})
	case d.Reasoning != "" || d.ReasoningSignature != "" || d.ReasoningRedacted != nil:
		r := &bus.ReasoningDelta{Text: d.Reasoning, Signature: d.ReasoningSignature, RedactedContent: d.ReasoningRedacted}
		e.emit(bus.Event{ContentBlockDelta: &bus.ContentBlockDelta{Delta: bus.Delta{ReasoningContent: r}, ContentBlockIndex: d.Index}})
	default:
		e.emit(bus.Event{ContentBlockDelta: &bus.ContentBlockDelta{Delta: bus.Delta{Text: d.Text}, ContentBlockIndex: d.Index}})
	}
	return nil
}

// fail publishes an error event.
func (e *emitter) fail(typ, msg string, details map[string]any) {
	e.emit(bus.Event{Error: &bus.ErrorEvent{Type: typ, Message: msg, RequestID: e.reqID, Details: details}})
}
