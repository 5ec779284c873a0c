package quota

import (
	"slices"
	"time"
)

// Bounds of a subject's stored state.
const (
	// MaxSettledRemembered is how many recently settled request ids a
	// subject remembers, so that a repeated settle is not counted twice.
	MaxSettledRemembered = 256
	// MaxReservations bounds the open reservations of one subject; a
	// reservation beyond it is refused as too many requests in flight.
	MaxReservations = 4096
)

// amount is usage of every metric. The JSON tags here and on bucket and
// period describe the form earlier versions stored (see decodeLegacy).
type amount struct {
	Requests int64 `json:"r,omitempty"`
	Input    int64 `json:"i,omitempty"`
	Output   int64 `json:"o,omitempty"`
	Total    int64 `json:"t,omitempty"`
	Spend    int64 `json:"s,omitempty"`
}

func (a amount) plus(b amount) amount {
	return amount{a.Requests + b.Requests, a.Input + b.Input, a.Output + b.Output, a.Total + b.Total, a.Spend + b.Spend}
}

func (a amount) get(metric string) int64 {
	switch metric {
	case MetricRequests:
		return a.Requests
	case MetricInputTokens:
		return a.Input
	case MetricOutputTokens:
		return a.Output
	case MetricTotalTokens:
		return a.Total
	case MetricSpend:
		return a.Spend
	}
	return 0
}

// bucket is committed usage within one [BucketWidth] slot.
type bucket struct {
	Start int64  `json:"s"` // unix seconds
	A     amount `json:"a"`
}

// period is committed usage within one calendar period.
type period struct {
	Start int64  `json:"s"` // unix seconds of the period's start
	A     amount `json:"a"`
}

// reservation is usage held for a request not yet settled. Skip marks a
// cached request the plan does not count: it holds nothing, but its
// settle must not count either.
type reservation struct {
	ID      uint64 // idHash of the request id
	Expires int64  // unix nanoseconds
	A       amount
	Skip    bool
}

// state is one subject's quota state, stored as one KV value (see
// [appendState]). Committed usage lives in the rolling buckets and the
// calendar periods; open reservations count in every window until they
// are settled or expire. Request ids are kept as their [idHash].
type state struct {
	Rolling []bucket // ascending by Start
	Day     period
	Month   period
	Minute  period
	Res     []reservation
	Settled []uint64 // idHash of recently settled ids, oldest first
}

// clockTimes are the window boundaries at one instant.
type clockTimes struct {
	now                            time.Time
	bucket, day, month, minute     int64 // starts, unix seconds
	nextDay, nextMonth, nextMinute time.Time
	rollingCutoff                  int64 // buckets starting at or before this are out
}

func timesAt(now time.Time, loc *time.Location) clockTimes {
	l := now.In(loc)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	month := time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
	minute := now.Truncate(time.Minute)
	return clockTimes{
		now:           now,
		bucket:        now.Truncate(BucketWidth).Unix(),
		day:           day.Unix(),
		month:         month.Unix(),
		minute:        minute.Unix(),
		nextDay:       day.AddDate(0, 0, 1),
		nextMonth:     month.AddDate(0, 1, 0),
		nextMinute:    minute.Add(time.Minute),
		rollingCutoff: now.Add(-RollingWindow).Unix(),
	}
}

// advance drops what no longer counts at ct: buckets out of the rolling
// window, finished calendar periods and expired reservations.
func (s *state) advance(ct clockTimes) {
	i := 0
	for i < len(s.Rolling) && s.Rolling[i].Start <= ct.rollingCutoff {
		i++
	}
	s.Rolling = s.Rolling[i:]
	for _, p := range []struct {
		p     *period
		start int64
	}{{&s.Day, ct.day}, {&s.Month, ct.month}, {&s.Minute, ct.minute}} {
		if p.p.Start != p.start {
			*p.p = period{Start: p.start}
		}
	}
	now := ct.now.UnixNano()
	s.Res = slices.DeleteFunc(s.Res, func(r reservation) bool { return r.Expires <= now })
}

// commit adds a to every window at ct (after advance).
func (s *state) commit(ct clockTimes, a amount) {
	if n := len(s.Rolling); n > 0 && s.Rolling[n-1].Start == ct.bucket {
		s.Rolling[n-1].A = s.Rolling[n-1].A.plus(a)
	} else {
		s.Rolling = append(s.Rolling, bucket{Start: ct.bucket, A: a})
	}
	s.Day.A = s.Day.A.plus(a)
	s.Month.A = s.Month.A.plus(a)
	s.Minute.A = s.Minute.A.plus(a)
}

func (s *state) reserved() amount {
	var sum amount
	for _, r := range s.Res {
		sum = sum.plus(r.A)
	}
	return sum
}

func (s *state) rollingSum() amount {
	var sum amount
	for _, b := range s.Rolling {
		sum = sum.plus(b.A)
	}
	return sum
}

// committed returns the committed usage of window.
func (s *state) committed(window string) amount {
	switch window {
	case WindowRolling24h:
		return s.rollingSum()
	case WindowDay:
		return s.Day.A
	case WindowMonth:
		return s.Month.A
	case WindowMinute:
		return s.Minute.A
	}
	return amount{}
}

// findReservation returns the index of the reservation of the request
// whose id hashes to id, or -1.
func (s *state) findReservation(id uint64) int {
	return slices.IndexFunc(s.Res, func(r reservation) bool { return r.ID == id })
}

// settled reports whether the request whose id hashes to id was settled
// recently.
func (s *state) settled(id uint64) bool { return slices.Contains(s.Settled, id) }

func (s *state) rememberSettled(id uint64) {
	s.Settled = append(s.Settled, id)
	if n := len(s.Settled); n > MaxSettledRemembered {
		s.Settled = slices.Delete(s.Settled, 0, n-MaxSettledRemembered)
	}
}

// resetsAt is when the usage of window starts to fall: the end of a
// calendar period, or when the oldest rolling bucket leaves the window
// (zero when the rolling window is empty).
func (s *state) resetsAt(ct clockTimes, window string) time.Time {
	switch window {
	case WindowDay:
		return ct.nextDay
	case WindowMonth:
		return ct.nextMonth
	case WindowMinute:
		return ct.nextMinute
	}
	if len(s.Rolling) == 0 {
		return time.Time{}
	}
	return time.Unix(s.Rolling[0].Start, 0).Add(RollingWindow)
}

// freesAt is the earliest time a request needing need of metric could
// fit under limit, given what is used now: the end of a calendar period,
// or when enough rolling buckets have left the window. Open reservations
// are assumed to settle at their full size. When nothing short of
// reservations expiring or settling frees enough, it is the soonest of
// the period end and the first reservation expiry.
func (s *state) freesAt(ct clockTimes, window, metric string, need, limit int64) time.Time {
	if window != WindowRolling24h {
		return s.resetsAt(ct, window)
	}
	used := s.rollingSum().get(metric) + s.reserved().get(metric)
	for _, b := range s.Rolling {
		used -= b.A.get(metric)
		if used+need <= limit {
			return time.Unix(b.Start, 0).Add(RollingWindow)
		}
	}
	soonest := ct.now.Add(RollingWindow)
	for _, r := range s.Res {
		if t := time.Unix(0, r.Expires); r.A.get(metric) > 0 && t.Before(soonest) {
			soonest = t
		}
	}
	return soonest
}
