package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// DefaultRequestTimeout applies to [Request] when ctx has no deadline.
const DefaultRequestTimeout = 5 * time.Second

// Service error codes, used with micro's req.Error and read back by
// [Request] as a *[ServiceError]. They follow HTTP status semantics.
const (
	CodeBadRequest   = "400"
	CodeUnauthorized = "401"
	CodeForbidden    = "403"
	CodeNotFound     = "404"
	CodeTooMany      = "429"
	CodeInternal     = "500"
	CodeUnavailable  = "503"
)

// ServiceError is an error reply from a micro service.
type ServiceError struct {
	Subject     string
	Code        string
	Description string
}

func (e *ServiceError) Error() string {
	return fmt.Sprintf("%s: %s (%s)", e.Subject, e.Description, e.Code)
}

// Status returns the code as an HTTP status, 500 when it is not numeric.
func (e *ServiceError) Status() int {
	n, err := strconv.Atoi(e.Code)
	if err != nil || n < 400 || n > 599 {
		return 500
	}
	return n
}

// ErrNoResponders is returned when no service instance listens.
var ErrNoResponders = errors.New("bus: no service is answering")

// Request sends req as JSON to subject and decodes the JSON reply into a
// Resp. An error reply becomes a *[ServiceError]. hdr may be nil. The trace
// context of ctx, if any, travels in hdr (see [InjectTrace]): this is the
// one place requests carry it.
func Request[Resp any](ctx context.Context, nc *nats.Conn, subject string, req any, hdr nats.Header) (Resp, error) {
	var zero Resp
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRequestTimeout)
		defer cancel()
	}
	data, err := json.Marshal(req)
	if err != nil {
		return zero, fmt.Errorf("bus: encode request for %s: %w", subject, err)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: InjectTrace(ctx, hdr)}
	reply, err := nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return zero, fmt.Errorf("%w on %s", ErrNoResponders, subject)
		}
		return zero, fmt.Errorf("bus: request %s: %w", subject, err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		return zero, &ServiceError{Subject: subject, Code: code, Description: reply.Header.Get(micro.ErrorHeader)}
	}
	var resp Resp
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return zero, fmt.Errorf("bus: decode reply from %s: %w", subject, err)
	}
	return resp, nil
}

// Respond encodes v as JSON and replies to req, turning an encoding
// failure into a 500 error reply.
func Respond(req micro.Request, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		_ = req.Error(CodeInternal, "encode reply: "+err.Error(), nil)
		return
	}
	_ = req.Respond(data)
}
