package chat

import (
	"encoding/json"
	"log/slog"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/nats-io/nats.go"
)

// emitter publishes the events of one answer, in order, numbering them.
// It is used by one goroutine.
type emitter struct {
	nc      *nats.Conn
	log     *slog.Logger
	subject string
	convID  string
	reqID   string
	seq     int
}

// emit stamps ev with the request's ids and the next sequence number and
// publishes it. A failure is logged: the answer goes on, since usage must
// still be recorded.
func (e *emitter) emit(ev bus.Event) {
	ev.ConversationID = e.convID
	ev.RequestID = e.reqID
	ev.Seq = e.seq
	e.seq++
	data, err := json.Marshal(ev)
	if err != nil {
		e.log.Error("encode event", "err", err, "seq", ev.Seq)
		return
	}
	if err := e.nc.Publish(e.subject, data); err != nil {
		e.log.Warn("publish event", "err", err, "subject", e.subject, "seq", ev.Seq)
	}
}

// delta publishes one chunk of text.
func (e *emitter) delta(text string) error {
	e.emit(bus.Event{ContentBlockDelta: &bus.ContentBlockDelta{Delta: bus.Delta{Text: text}}})
	return nil
}

// fail publishes an error event.
func (e *emitter) fail(typ, msg string, details map[string]any) {
	e.emit(bus.Event{Error: &bus.ErrorEvent{Type: typ, Message: msg, RequestID: e.reqID, Details: details}})
}
