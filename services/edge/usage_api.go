package edge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// The usage API: GET /v1/usage.
const (
	// PathUsage answers usage queries for the caller (or, for admins,
	// anyone).
	PathUsage = "/v1/usage"
	// DefaultUsageRange is the range of a usage query that names no
	// "from": the day before "to".
	DefaultUsageRange = 24 * time.Hour
	// UsageTimeout bounds waiting for meter's answer.
	UsageTimeout = 15 * time.Second
	// UsageAllUsers is the "sub" with which an admin asks for every
	// user's usage.
	UsageAllUsers = "*"
)

// usageGroups are the accepted group_by values.
var usageGroups = []string{"", "user", "key", "model", "hour", "day"}

// UsageAnswer is the JSON body of a successful GET /v1/usage.
type UsageAnswer struct {
	// Sub is whose usage this is: the caller's own sub, the sub an admin
	// asked for, or "*" for everyone.
	Sub string `json:"sub"`
	// From and To are the range, [From, To).
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// GroupBy is how rows are grouped ("" = one total row).
	GroupBy string `json:"groupBy"`
	// Rows are the sums, ordered by group.
	Rows []bus.UsageRow `json:"rows"`
}

// parseUsageTime accepts RFC 3339 or a UTC date (2006-01-02).
func parseUsageTime(name, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time or a YYYY-MM-DD date", name, v)
}

// usageQuery reads the query parameters: from, to (default now), group_by
// and sub. It names the first bad parameter.
func usageQuery(r *http.Request, now time.Time) (bus.UsageQuery, error) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "from", "to", "group_by", "sub":
		default:
			return bus.UsageQuery{}, fmt.Errorf("unknown parameter %q (want from, to, group_by, sub)", k)
		}
	}
	out := bus.UsageQuery{To: now.UTC(), GroupBy: q.Get("group_by"), Sub: q.Get("sub")}
	var err error
	if v := q.Get("to"); v != "" {
		if out.To, err = parseUsageTime("to", v); err != nil {
			return out, err
		}
	}
	out.From = out.To.Add(-DefaultUsageRange)
	if v := q.Get("from"); v != "" {
		if out.From, err = parseUsageTime("from", v); err != nil {
			return out, err
		}
	}
	if !out.To.After(out.From) {
		return out, errors.New("to must be after from")
	}
	ok := false
	for _, g := range usageGroups {
		ok = ok || g == out.GroupBy
	}
	if !ok {
		return out, fmt.Errorf("group_by %q is not one of user, key, model, hour, day", out.GroupBy)
	}
	return out, nil
}

// handleUsage answers GET /v1/usage: the caller is verified like any other
// request, and meter decides what they may see (their own usage; members
// of its admin group anyone's, or everyone's with sub=*).
func (s *Service) handleUsage(w http.ResponseWriter, r *http.Request) {
	caller, perr := s.verify(r.Context(), credentialFrom(r.Header.Get(headerAuthorization), r.Header.Get(headerAPIKey)))
	if perr != nil {
		writeUsageError(w, perr.Status(), perr.ErrorType, perr.Message)
		return
	}
	q, err := usageQuery(r, time.Now())
	if err != nil {
		writeUsageError(w, http.StatusBadRequest, "BadRequestException", err.Error())
		return
	}
	q.Identity = caller
	if q.Sub == caller.Sub {
		q.Sub = ""
	}
	ctx, cancel := context.WithTimeout(r.Context(), UsageTimeout)
	defer cancel()
	resp, err := bus.Request[bus.UsageResponse](ctx, s.nc, s.subj.MeterUsage(), q, nil)
	if err != nil {
		var se *bus.ServiceError
		switch {
		case errors.As(err, &se) && se.Status() == http.StatusBadRequest:
			writeUsageError(w, http.StatusBadRequest, "BadRequestException", se.Description)
		case errors.As(err, &se) && se.Status() == http.StatusForbidden:
			writeUsageError(w, http.StatusForbidden, "UnauthorizedException", se.Description)
		default:
			s.log.Warn("meter unavailable", "op", "usage", "err", err)
			writeUsageError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "metering service unavailable")
		}
		return
	}
	sub := q.Sub
	if sub == "" {
		sub = caller.Sub
	}
	if resp.Rows == nil {
		resp.Rows = []bus.UsageRow{}
	}
	writeJSON(w, http.StatusOK, UsageAnswer{Sub: sub, From: q.From, To: q.To, GroupBy: q.GroupBy, Rows: resp.Rows})
}

// writeUsageError replies {"error":{"type","message"}}.
func writeUsageError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"type": strings.TrimSpace(typ), "message": msg}})
}
