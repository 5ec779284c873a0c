package quota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
// may share one bucket. Concurrent updates of one subject within one KV
// are applied in arrival order and written together by one
// compare-and-set (group commit); across KVs, the compare-and-set on the
// key's revision alone decides, so no decision rests on per-process
// counters.
type KV struct {
	cfg  Config
	kv   jetstream.KeyValue
	hist History
	log  *slog.Logger

	groupsMu sync.Mutex
	groups   map[string]*group // by KV key: updates queued behind a running write

	cacheMu sync.Mutex
	cache   map[string]cached // by KV key

	// limits holds each plan's limits, listed once.
	limits map[string][]windowLimit
}

// cached is a subject's state at a revision. The entry of a key is only
// used by the leader of the key's group (see [KV.update]), which takes
// the state over (no copy) and either puts it back after a successful
// write or drops the entry.
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
	q.cache[key] = cached{st: st, rev: rev}
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
	limits := make(map[string][]windowLimit, len(cfg.Plans))
	for name, p := range cfg.Plans {
		limits[name] = p.limits()
	}
	return &KV{cfg: cfg.withDefaults(), kv: kv, hist: hist, log: log, limits: limits}, nil
}

// budget is one plan binding a request: which subject, which plan.
type budget struct {
	scope  string
	key    string // KV key
	filter ledger.Filter
	plan   Plan
	limits []windowLimit // plan.limits()
}

// subjectKey is the KV key of a scope's id: the scope, then a hash of
// the id (ids may hold characters KV keys may not).
func subjectKey(scope, id string) string {
	sum := sha256.Sum256([]byte(id))
	return scope + "." + hex.EncodeToString(sum[:16])
}

// budgets returns the budgets binding id, in reservation order: key,
// user, tenant. A scope whose plan sets no limit has no budget: it is
// neither stored nor written.
func (q *KV) budgets(id identity.Identity) []budget {
	var out []budget
	own := ScopeUser
	if id.KeyID != "" {
		own = ScopeKey
	}
	pick := func(scope, explicit, def string) (Plan, []windowLimit, bool) {
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
		// A plan without limits binds nothing: no state, no write.
		return p, q.limits[name], ok && name != "" && len(q.limits[name]) > 0
	}
	if id.KeyID != "" {
		if p, l, ok := pick(ScopeKey, q.cfg.Keys[id.KeyID], q.cfg.Defaults.Key); ok {
			out = append(out, budget{ScopeKey, subjectKey(ScopeKey, id.KeyID), ledger.Filter{KeyID: id.KeyID}, p, l})
		}
	}
	if p, l, ok := pick(ScopeUser, q.cfg.Users[id.Sub], q.cfg.Defaults.User); ok {
		out = append(out, budget{ScopeUser, subjectKey(ScopeUser, id.Issuer+"\x00"+id.Sub), ledger.Filter{Sub: id.Sub, Issuer: id.Issuer}, p, l})
	}
	if id.Tenant != "" {
		if p, l, ok := pick(ScopeTenant, q.cfg.Tenants[id.Tenant], q.cfg.Defaults.Tenant); ok {
			out = append(out, budget{ScopeTenant, subjectKey(ScopeTenant, id.Tenant), ledger.Filter{Tenant: id.Tenant}, p, l})
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
	id := idHash(req.RequestID)
	resp := bus.ReserveResponse{Granted: true, Windows: []bus.QuotaWindow{}}
	var taken []budget
	for _, b := range q.budgets(req.Identity) {
		var refusal *bus.QuotaRefusal
		wins, err := q.update(ctx, b, func(s *state, ct clockTimes) (bool, error) {
			refusal = nil // fn may run more than once; only the last run counts
			if s.findReservation(id) >= 0 {
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
			s.Res = append(s.Res, reservation{ID: id, Expires: ct.now.Add(q.cfg.ReservationTTL).UnixNano(), A: a, Skip: skip})
			return true, nil
		})
		if err != nil {
			q.release(taken, id)
			return bus.ReserveResponse{}, err
		}
		resp.Windows = append(resp.Windows, wins...)
		if refusal != nil {
			q.release(taken, id)
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
	for _, l := range b.limits {
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
func (q *KV) release(bs []budget, id uint64) {
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
			q.log.Warn("release reservation; it will expire", "scope", b.scope, "request_id_hash", id, "err", err)
		}
	}
}

// Settle replaces the reservation with the actual usage on every budget.
// A settle without a reservation (it expired, or was never made) still
// counts: the usage happened. A repeated settle counts once. A cached
// answer (req.Usage.Cached) counts only where the plan counts cached
// answers, whatever it was reserved as, and also when its reservation
// expired before the settle.
func (q *KV) Settle(ctx context.Context, req bus.SettleRequest) (bus.SettleResponse, error) {
	total := req.Usage.TotalTokens
	if total == 0 {
		total = req.Usage.InputTokens + req.Usage.OutputTokens
	}
	actual := amount{Requests: 1, Input: req.Usage.InputTokens, Output: req.Usage.OutputTokens, Total: total, Spend: req.CostMicroUSD}
	id := idHash(req.RequestID)
	resp := bus.SettleResponse{Windows: []bus.QuotaWindow{}}
	var firstErr error
	for _, b := range q.budgets(req.Identity) {
		wins, err := q.update(ctx, b, func(s *state, ct clockTimes) (bool, error) {
			free := req.Usage.Cached && !b.plan.CountCached
			if i := s.findReservation(id); i >= 0 {
				free = free || s.Res[i].Skip
				s.Res = append(s.Res[:i], s.Res[i+1:]...)
			} else if s.settled(id) {
				return false, nil
			}
			if !free {
				s.commit(ct, actual)
			}
			s.rememberSettled(id)
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
// changed the state; an unchanged state is not written. fn may run more
// than once (after a conflict) and must not change the state when it
// returns an error.
//
// Group commit: concurrent updates of one key within this process are
// applied in arrival order to one state and stored by one
// compare-and-set write. The first caller leads: it takes every update
// queued for the key, applies them and writes once; updates that arrive
// meanwhile queue for the next write, led by the first of them. Each
// update's windows are those after its own fn. A batch shares its
// leader's ctx: a failed read or write fails every update of the batch.
func (q *KV) update(ctx context.Context, b budget, fn func(*state, clockTimes) (bool, error)) ([]bus.QuotaWindow, error) {
	o := &op{b: b, fn: fn, wake: make(chan struct{})}
	q.groupsMu.Lock()
	if q.groups == nil {
		q.groups = make(map[string]*group)
	}
	g, busy := q.groups[b.key]
	if !busy {
		g = &group{}
		q.groups[b.key] = g
	}
	g.pending = append(g.pending, o)
	q.groupsMu.Unlock()
	if busy {
		<-o.wake // the leader of the running batch always wakes us
		if !o.lead {
			return o.wins, o.err
		}
	}
	// Lead: take what is queued (this update first), write, hand over.
	q.groupsMu.Lock()
	batch := g.pending
	g.pending = nil
	q.groupsMu.Unlock()
	q.apply(ctx, b.key, batch)
	q.groupsMu.Lock()
	if len(g.pending) > 0 {
		next := g.pending[0]
		next.lead = true
		close(next.wake)
	} else {
		delete(q.groups, b.key)
	}
	q.groupsMu.Unlock()
	for _, x := range batch[1:] {
		close(x.wake)
	}
	return o.wins, o.err
}

// op is one update waiting in a key's group.
type op struct {
	b    budget
	fn   func(*state, clockTimes) (bool, error)
	wake chan struct{} // closed when wins and err are set, or lead is
	lead bool          // woken to lead the next batch
	wins []bus.QuotaWindow
	err  error
}

// group is the queue of updates of one key; it exists while a leader
// runs.
type group struct {
	pending []*op
}

// apply runs batch (updates of key) against key's state by
// compare-and-set, retrying on conflict, and sets each update's result.
func (q *KV) apply(ctx context.Context, key string, batch []*op) {
	fail := func(err error) {
		for _, o := range batch {
			o.wins, o.err = nil, err
		}
	}
	b := batch[0].b // same key: same scope and ledger filter
	useCache := true
	for attempt := 0; attempt < MaxCASAttempts; attempt++ {
		var (
			st        state
			rev       uint64
			fromCache bool
			err       error
		)
		if c, ok := q.cacheGet(key); ok && useCache {
			st, rev, fromCache = c.st, c.rev, true
		}
		if !fromCache {
			if st, rev, err = q.load(ctx, b); err != nil {
				fail(err)
				return
			}
		}
		useCache = true
		ct := timesAt(q.cfg.Now(), q.cfg.Location)
		st.advance(ct)
		changed := false
		for _, o := range batch {
			c, err := o.fn(&st, ct)
			o.wins, o.err = nil, err
			if err == nil {
				o.wins = windows(&st, ct, o.b)
				changed = changed || c
			}
		}
		if !changed {
			if fromCache {
				q.cacheDrop(key)
				// Decide on what is stored now, not on what this
				// process saw last: another replica may have changed it.
				useCache = false
				attempt--
				continue
			}
			q.cachePut(key, st, rev)
			return
		}
		bufp := encodeBufs.Get().(*[]byte)
		*bufp = appendState((*bufp)[:0], &st)
		var newRev uint64
		if rev == 0 {
			newRev, err = q.kv.Create(ctx, key, *bufp)
		} else {
			newRev, err = q.kv.Update(ctx, key, *bufp, rev)
		}
		encodeBufs.Put(bufp)
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			q.cacheDrop(key)
			useCache = false
			if !fromCache {
				pause := time.Duration(rand.Int64N(int64(casBackoffMax)))
				select {
				case <-ctx.Done():
					fail(ctx.Err())
					return
				case <-time.After(pause):
				}
			}
			continue
		}
		if err != nil {
			q.cacheDrop(key)
			fail(fmt.Errorf("quota: write %s: %w", key, err))
			return
		}
		q.cachePut(key, st, newRev)
		return
	}
	fail(fmt.Errorf("%w: %s after %d attempts", ErrContention, key, MaxCASAttempts))
}

// encodeBufs holds the buffers states are encoded into for a write.
var encodeBufs = sync.Pool{New: func() any { return new([]byte) }}

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
	s, err := decodeState(e.Value())
	if err != nil {
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
	out := make([]bus.QuotaWindow, 0, len(b.limits))
	for _, l := range b.limits {
		used := s.committed(l.window).get(l.metric) + reserved.get(l.metric)
		w := bus.QuotaWindow{Scope: b.scope, Window: l.window, Metric: l.metric, Used: used, Limit: l.limit, Remaining: max(0, l.limit-used)}
		if t := s.resetsAt(ct, l.window); !t.IsZero() {
			w.ResetsAt = t.UTC().Format(time.RFC3339)
		}
		out = append(out, w)
	}
	return out
}
