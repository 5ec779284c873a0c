package authz

import (
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/channel"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// decide answers a check at time now, treating an identity as expired only
// once skew has passed after its expiry. A denial is a normal response with
// a specific reason; an error means the request itself is bad (an unknown
// op). decide is safe for concurrent use.
func (p Policy) decide(req bus.CheckRequest, now time.Time, skew time.Duration) (bus.CheckResponse, error) {
	var publish bool
	switch req.Op {
	case bus.OpPublish:
		publish = true
	case bus.OpSubscribe:
	default:
		return bus.CheckResponse{}, fmt.Errorf("%w, got %q", errBadOp, clipText(req.Op))
	}
	ch, err := channel.ParsePattern(req.Channel)
	if err != nil {
		return deny(err.Error()), nil
	}
	id := req.Identity
	if id.Sub == "" {
		return deny("the request carries no verified identity"), nil
	}
	if !id.ExpiresAt.IsZero() && now.After(id.ExpiresAt.Add(skew)) {
		return deny("the caller's credential expired at " + id.ExpiresAt.UTC().Format(time.RFC3339)), nil
	}
	if publish && ch.IsWildcard() {
		return deny("cannot publish to " + ch.String() + ": a publish goes to one exact channel, not a wildcard"), nil
	}
	ns := ch.Namespace()
	np, ok := p.Namespaces[ns]
	if !ok {
		return deny("namespace " + ns + " is not open"), nil
	}
	rules := np.Subscribe
	if publish {
		rules = np.Publish
	}
	if len(rules) == 0 {
		return deny(fmt.Sprintf("%s %s denied: namespace %s allows no %s", req.Op, ch, ns, req.Op)), nil
	}
	for _, r := range rules {
		if allows(r, id, ch) {
			return bus.CheckResponse{Allow: true}, nil
		}
	}
	// Denied: say why each rule did not allow it. Only this path allocates.
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s denied:", req.Op, ch)
	for i, r := range rules {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " %s (rule %s)", refusal(r, id, ch, req.Op), r)
	}
	return deny(b.String()), nil
}

func deny(reason string) bus.CheckResponse { return bus.CheckResponse{Allow: false, Reason: reason} }

// allows reports whether rule r lets id perform an operation on ch.
func allows(r Rule, id identity.Identity, ch channel.Channel) bool {
	switch r {
	case RuleOwner:
		// Segment 2 is fixed in the pattern whenever there are two or more
		// segments, so every channel a wildcard matches is then owned too.
		return ch.Len() >= 2 && id.ChannelID != "" && ch.Segment(1) == id.ChannelID
	case RuleAuthenticated:
		return id.Sub != ""
	case RuleService:
		return id.Kind == identity.KindService
	case RuleDeny:
		return false
	default:
		g, ok := r.group()
		return ok && id.InGroup(g)
	}
}

// refusal explains why rule r did not allow the operation.
func refusal(r Rule, id identity.Identity, ch channel.Channel, op string) string {
	switch r {
	case RuleOwner:
		switch {
		case ch.Len() < 2 && ch.IsWildcard():
			return "a wildcard would reach other callers' channels"
		case ch.Len() < 2:
			return "the channel has no owner segment"
		default:
			return fmt.Sprintf("the channel belongs to %s, not to the caller (%s)", ch.Segment(1), id.ChannelID)
		}
	case RuleService:
		return "only Gatehouse services may " + op + " here"
	case RuleDeny:
		return "namespace " + ch.Namespace() + " is closed to " + op
	case RuleAuthenticated:
		return "the caller is not authenticated"
	default:
		g, _ := r.group()
		return "the caller is not in group " + g
	}
}

// clipText shortens caller-controlled text before it is quoted.
func clipText(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
