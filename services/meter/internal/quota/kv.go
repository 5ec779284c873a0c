package quota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/ledger"
	"github.com/nats-io/nats.go/jetstream"
)

// Compare-and-set tuning.
const (
	// MaxCASAttempts bounds the compare-and-set attempts of one update of
	// one subject before [ErrContention].
	MaxCASAttempts = 100
	// casBackoffMax bounds the random pause between attempts.
	casBackoffMax = 2 * time.Millisecond
	// lockStripes is how many per-process locks serialise updates of the
	// same subject within one replica (fewer conflicts, same result).
	lockStripes = 256
	// MaxCachedSubjects bounds the per-process cache of the last state
	// and revision written or read per subject; beyond it the cache is
	// emptied. The cache only saves a read: every write is still a
	// compare-and-set on the revision, and a decision that writes
	// nothing is re-checked against a fresh read.
	MaxCachedSubjects = 10_000
)

// History is the ledger as the quota rebuilds a missing subject from it.
type History interface {
	// UsageBuckets sums the records of f finished at or after from per
	// [BucketWidth] slot.
	UsageBuckets(ctx context.Context, f ledger.Filter, from time.Time, width time.Duration) ([]ledger.Bucket, error)
}

var _ Quota = (*KV)(nil)

// KV is the [Quota] kept in a JetStream KV bucket. It is safe for
// concurrent use, and any number of KV values on any number of processes
// may share one bucket.
type KV struct {
	cfg   Config
	kv    jetstream.KeyValue
	hist  History
	log   *slog.Logger
	locks [lockStripes]sync.Mutex

	cacheMu sync.Mutex
	cache   map[string]cached // by KV key
}

// cached is a subject's state at a revision. It is never mutated: users
// take a clone.
type cached struct {
	st  state
	rev uint64
}

func (q *KV) cacheGet(key string) (cached, bool) {
	q.cacheMu.Lock()
	defer q.cacheMu.Unlock()
	c, ok := q.cache[key]
	return c, ok
}

func (q *KV) cachePut(key string, st state, rev uint64) {
	q.cacheMu.Lock()
	defer q.cacheMu.Unlock()
	if q.cache == nil || len(q.cache) >= MaxCachedSubjects {
		q.cache = make(map[string]cached)
	}
	q.cache[key] = cached{st: st.clone(), rev: rev}
}

func (q *KV) cacheDrop(key string) {
	q.cacheMu.Lock()
	defer q.cacheMu.Unlock()
	delete(q.cache, key)
}

// NewKV validates cfg and returns a KV quota over kv. hist may be nil,
// in which case a missing subject starts empty.
func NewKV(cfg Config, kv jetstream.KeyValue, hist History, log *slog.Logger) (*KV, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if kv == nil {
		return nil, fmt.Errorf("%w: nil key-value bucket", ErrInvalidConfig)
	}
	if log == nil {
		log = slog.Default()
	}
	return &KV{cfg: cfg.withDefaults(), kv: kv, hist: hist, log: log}, nil
}

// budget is one plan binding a request: which subject, which plan.
type budget struct {
	scope  string
	key    string // KV key
	filter ledger.Filter
	plan   Plan
}

// subjectKey is the KV key of a scope's id: the scope, then a hash of
// the id (ids may hold characters KV keys may not).
func subjectKey(scope, id string) string {
	sum := sha256.Sum256([]byte(id))
	return scope + "." + hex.EncodeToString(sum[:16])
}

// budgets returns the budgets binding id, in reservation order: key,
// user, tenant.
func (q *KV) budgets(id identity.Identity) []budget {
	var out []budget
	own := ScopeUser
	if id.KeyID != "" {
		own = ScopeKey
	}
	pick := func(scope, explicit, def string) (Plan, bool) {
		name := explicit
		if name == "" && scope == own && id.Plan != "" {
			if _, ok := q.cfg.Plans[id.Plan]; ok {
				name = id.Plan
			}
		}
		if name == "" {
			name = def
		}
		p, ok := q.cfg.Plans[name]
		return p, ok && name != ""
	}
	if id.KeyID != "" {
		if p, ok := pick(ScopeKey, q.cfg.Keys[id.KeyID], q.cfg.Defaults.Key); ok {
			out = append(out, budget{ScopeKey, subjectKey(ScopeKey, id.KeyID), ledger.Filter{KeyID: id.KeyID}, p})
		}
	}
	if p, ok := pick(ScopeUser, q.cfg.Users[id.Sub], q.cfg.Defaults.User); ok {
		out = append(out, budget{ScopeUser, subjectKey(ScopeUser, id.Issuer+"\x00"+id.Sub), ledger.Filter{Sub: id.Sub, Issuer: id.Issuer}, p})
	}
	if id.Tenant != "" {
		if p, ok := pick(ScopeTenant, q.cfg.Tenants[id.Tenant], q.cfg.Defaults.Tenant); ok {
			out = append(out, budget{ScopeTenant, subjectKey(ScopeTenant, id.Tenant), ledger.Filter{Tenant: id.Tenant}, p})
		}
	}
	return out
}

// Reserve reserves on each budget in turn; if one refuses, what the
// earlier ones took is released and the refusal is returned. A repeated
// reserve of the same request id is granted without reserving twice.
func (q *KV) Reserve(ctx context.Context, req bus.ReserveRequest) (bus.ReserveResponse, error) {
	want := amount{
		Requests: 1, Input: req.InputTokens, Output: req.MaxOutputTokens,
		Total: req.InputTokens + req.MaxOutputTokens, Spend: req.MaxCostMicroUSD,
	}
	resp := bus.ReserveResponse{Granted: true, Windows: []bus.QuotaWindow{}}
	var taken []budget
	for _, b := range q.budgets(req.Identity) {
		var refusal *bus.QuotaRefusal
		wins, err := q.update(ctx, b, func(s *state, ct clockTimes) (bool, error) {
			if s.findReservation(req.RequestID) >= 0 {
				return false, nil
			}
			skip := req.Cached && !b.plan.CountCached
			a := want
			if skip {
				a = amount{}
			}
			if !skip {
				refusal = q.check(s, ct, b, a)
				if refusal != nil {
					return false, nil
				}
			}
			if len(s.Res) >= MaxReservations {
				refusal = &bus.QuotaRefusal{
					QuotaWindow: bus.QuotaWindow{Scope: b.scope, Window: "inFlight", Metric: MetricRequests,
						Used: int64(len(s.Res)), Limit: MaxReservations, Remaining: 0},
					RetryAfterSeconds: 1,
				}
				return false, nil
			}
			s.Res = append(s.Res, reservation{ID: req.RequestID, Expires: ct.now.Add(q.cfg.ReservationTTL).UnixNano(), A: a, Skip: skip})
			return true, nil
		})
		if err != nil {
			q.release(taken, req.RequestID)
			return bus.ReserveResponse{}, err
		}
		resp.Windows = append(resp.Windows, wins...)
		if refusal != nil {
			q.release(taken, req.RequestID)
			return bus.ReserveResponse{Granted: false, Refusal: refusal, Windows: resp.Windows}, nil
		}
		taken = append(taken, b)
	}
	return resp, nil
}

// check returns the refusal of the limit that a would exceed, or nil.
// When several would, it names the one that frees last: the request can
// pass only then.
func (q *KV) check(s *state, ct clockTimes, b budget, a amount) *bus.QuotaRefusal {
	var (
		worst *bus.QuotaRefusal
		frees time.Time
	)
	reserved := s.reserved()
	for _, l := range b.plan.limits() {
		need := a.get(l.metric)
		if need == 0 {
			continue
		}
		used := s.committed(l.window).get(l.metric) + reserved.get(l.metric)
		if used+need <= l.limit {
			continue
		}
		at := s.freesAt(ct, l.window, l.metric, need, l.limit)
		if worst != nil && !at.After(frees) {
			continue
		}
		retry := int64(at.Sub(ct.now).Seconds() + 0.999)
		if retry < 1 {
			retry = 1
		}
		frees = at
		worst = &bus.QuotaRefusal{
			QuotaWindow: bus.QuotaWindow{
				Scope: b.scope, Window: l.window, Metric: l.metric, Used: used, Limit: l.limit,
				ResetsAt: at.UTC().Format(time.RFC3339), Remaining: max(0, l.limit-used),
			},
			RetryAfterSeconds: retry,
		}
	}
	return worst
}

// release drops id's reservation from each budget, best effort: a
// reservation that cannot be released expires on its own.
func (q *KV) release(bs []budget, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, b := range bs {
		_, err := q.update(ctx, b, func(s *state, _ clockTimes) (bool, error) {
			i := s.findReservation(id)
			if i < 0 {
				return false, nil
			}
			s.Res = append(s.Res[:i], s.Res[i+1:]...)
			return true, nil
		})
		if err != nil {
			q.log.Warn("release reservation; it will expire", "scope", b.scope, "request_id", id, "err", err)
		}
	}
}

// Settle replaces the reservation with the actual usage on every budget.
// A settle without a reservation (it expired, or was never made) still
// counts: the usage happened. A repeated settle counts once.
func (q *KV) Settle(ctx context.Context, req bus.SettleRequest) (bus.SettleResponse, error) {
	total := req.Usage.TotalTokens
	if total == 0 {
		total = req.Usage.InputTokens + req.Usage.OutputTokens
	}
	actual := amount{Requests: 1, Input: req.Usage.InputTokens, Output: req.Usage.OutputTokens, Total: total, Spend: req.CostMicroUSD}
	resp := bus.SettleResponse{Windows: []bus.QuotaWindow{}}
	var firstErr error
	for _, b := range q.budgets(req.Identity) {
		wins, err := q.update(ctx, b, func(s *state, ct clockTimes) (bool, error) {
			if i := s.findReservation(req.RequestID); i >= 0 {
				skip := s.Res[i].Skip
				s.Res = append(s.Res[:i], s.Res[i+1:]...)
				if !skip {
					s.commit(ct, actual)
				}
			} else if s.settled(req.RequestID) {
				return false, nil
			} else {
				s.commit(ct, actual)
			}
			s.rememberSettled(req.RequestID)
			return true, nil
		})
		if err != nil {
			// Keep settling the other budgets: each is its own key.
			firstErr = cmpErr(firstErr, fmt.Errorf("quota: settle %s: %w", b.scope, err))
			continue
		}
		resp.Windows = append(resp.Windows, wins...)
	}
	if firstErr != nil {
		return bus.SettleResponse{}, firstErr
	}
	return resp, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Windows reports id's windows without changing anything.
func (q *KV) Windows(ctx context.Context, id identity.Identity) ([]bus.QuotaWindow, error) {
	out := []bus.QuotaWindow{}
	for _, b := range q.budgets(id) {
		wins, err := q.update(ctx, b, func(*state, clockTimes) (bool, error) { return false, nil })
		if err != nil {
			return nil, err
		}
		out = append(out, wins...)
	}
	return out, nil
}

// update applies fn to b's state by compare-and-set, retrying on
// conflict, and returns b's windows after fn. fn reports whether it
// changed the state; an unchanged state is not written.
func (q *KV) update(ctx context.Context, b budget, fn func(*state, clockTimes) (bool, error)) ([]bus.QuotaWindow, error) {
	mu := &q.locks[stripe(b.key)]
	mu.Lock()
	defer mu.Unlock()
	useCache := true
	for attempt := 0; attempt < MaxCASAttempts; attempt++ {
		var (
			st        state
			rev       uint64
			fromCache bool
			err       error
		)
		if c, ok := q.cacheGet(b.key); ok && useCache {
			st, rev, fromCache = c.st.clone(), c.rev, true
		}
		if !fromCache {
			if st, rev, err = q.load(ctx, b); err != nil {
				return nil, err
			}
		}
		useCache = true
		ct := timesAt(q.cfg.Now(), q.cfg.Location)
		st.advance(ct)
		changed, err := fn(&st, ct)
		if err != nil {
			return nil, err
		}
		if !changed {
			if fromCache {
				// Decide on what is stored now, not on what this
				// process saw last: another replica may have changed it.
				useCache = false
				attempt--
				continue
			}
			return windows(&st, ct, b), nil
		}
		data, err := json.Marshal(&st)
		if err != nil {
			return nil, fmt.Errorf("quota: encode state: %w", err)
		}
		var newRev uint64
		if rev == 0 {
			newRev, err = q.kv.Create(ctx, b.key, data)
		} else {
			newRev, err = q.kv.Update(ctx, b.key, data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			q.cacheDrop(b.key)
			useCache = false
			if !fromCache {
				pause := time.Duration(rand.Int64N(int64(casBackoffMax)))
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(pause):
				}
			}
			continue
		}
		if err != nil {
			q.cacheDrop(b.key)
			return nil, fmt.Errorf("quota: write %s: %w", b.key, err)
		}
		q.cachePut(b.key, st, newRev)
		return windows(&st, ct, b), nil
	}
	return nil, fmt.Errorf("%w: %s after %d attempts", ErrContention, b.key, MaxCASAttempts)
}

func stripe(key string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return h.Sum32() % lockStripes
}

// load reads b's state and revision; a missing key is rebuilt from the
// ledger and returned with revision 0.
func (q *KV) load(ctx context.Context, b budget) (state, uint64, error) {
	e, err := q.kv.Get(ctx, b.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		s, err := q.rebuild(ctx, b)
		return s, 0, err
	case err != nil:
		return state{}, 0, fmt.Errorf("quota: read %s: %w", b.key, err)
	}
	var s state
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return state{}, 0, fmt.Errorf("%w: %s: %v", ErrCorruptState, b.key, err)
	}
	return s, e.Revision(), nil
}

// rebuild sums the ledger into a fresh state: rolling buckets of the last
// 24 hours and the current day and month. Calendar periods are rebuilt at
// [BucketWidth] resolution (a bucket counts in the period it starts in);
// the minute window starts empty. Records still on their way to the
// ledger are not included.
func (q *KV) rebuild(ctx context.Context, b budget) (state, error) {
	var s state
	if q.hist == nil {
		return s, nil
	}
	ct := timesAt(q.cfg.Now(), q.cfg.Location)
	from := time.Unix(min(ct.month, ct.rollingCutoff), 0)
	rows, err := q.hist.UsageBuckets(ctx, b.filter, from, BucketWidth)
	if err != nil {
		return s, fmt.Errorf("quota: rebuild %s from the ledger: %w", b.scope, err)
	}
	s.Day.Start, s.Month.Start, s.Minute.Start = ct.day, ct.month, ct.minute
	for _, r := range rows {
		a := amount{Requests: r.Requests, Input: r.InputTokens, Output: r.OutputTokens, Total: r.TotalTokens, Spend: r.CostMicroUSD}
		start := r.Start.Unix()
		if start > ct.rollingCutoff {
			s.Rolling = append(s.Rolling, bucket{Start: start, A: a})
		}
		if start >= ct.day {
			s.Day.A = s.Day.A.plus(a)
		}
		if start >= ct.month {
			s.Month.A = s.Month.A.plus(a)
		}
	}
	return s, nil
}

// windows lists b's limits with their use at ct.
func windows(s *state, ct clockTimes, b budget) []bus.QuotaWindow {
	reserved := s.reserved()
	var out []bus.QuotaWindow
	for _, l := range b.plan.limits() {
		used := s.committed(l.window).get(l.metric) + reserved.get(l.metric)
		w := bus.QuotaWindow{Scope: b.scope, Window: l.window, Metric: l.metric, Used: used, Limit: l.limit, Remaining: max(0, l.limit-used)}
		if t := s.resetsAt(ct, l.window); !t.IsZero() {
			w.ResetsAt = t.UTC().Format(time.RFC3339)
		}
		out = append(out, w)
	}
	return out
}
