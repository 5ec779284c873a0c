package edge

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
)

// MaxHTTPRateCallers bounds how many callers' publish buckets one edge
// remembers for POST /event. When it is reached, buckets that have refilled
// completely (their callers are idle, so forgetting them changes nothing)
// are dropped; if every caller is active, the newcomer is refused with 429.
const MaxHTTPRateCallers = 65536

// httpRateLimiter applies [Config.PublishRate] and [Config.PublishBurst] to
// POST /event per caller (identityKey), so HTTP publishing is bounded like
// a socket's. It is safe for concurrent use.
type httpRateLimiter struct {
	rate  float64
	burst int
	max   int

	mu      sync.Mutex
	buckets map[string]*tokenBucket
}

func newHTTPRateLimiter(rate float64, burst, max int) *httpRateLimiter {
	return &httpRateLimiter{rate: rate, burst: burst, max: max, buckets: make(map[string]*tokenBucket)}
}

// allow takes n events from id's bucket at now. When it refuses it returns
// how long until n events would be allowed.
func (l *httpRateLimiter) allow(id identity.Identity, n int, now time.Time) (bool, time.Duration) {
	key := identityKey(id)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evictIdle(now)
		}
		if len(l.buckets) >= l.max {
			return false, time.Second
		}
		nb := newTokenBucket(l.rate, l.burst, now)
		b = &nb
		l.buckets[key] = b
	}
	if b.take(n, now) {
		return true, 0
	}
	wait := time.Duration(math.Ceil((float64(n)-b.tokens)/l.rate*1000)) * time.Millisecond
	return false, wait
}

// evictIdle drops buckets that are full again: a new bucket is the same.
func (l *httpRateLimiter) evictIdle(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*b.rate >= b.burst {
			delete(l.buckets, k)
		}
	}
}

// limitHTTPPublish answers 429 with Retry-After and reports false when the
// caller is over the publish rate.
func (s *Service) limitHTTPPublish(w http.ResponseWriter, id identity.Identity, events int) bool {
	ok, wait := s.httpRate.allow(id, events, time.Now())
	if ok {
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	writeErrors(w, protocol.LimitExceeded(fmt.Sprintf("publish rate limit: at most %g events per second (bursts of %d) per caller", s.cfg.PublishRate, s.cfg.PublishBurst)), http.StatusTooManyRequests)
	return false
}
