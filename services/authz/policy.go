package authz

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/channel"
	"github.com/gatehouse-ai/gatehouse/services/authz/internal/verifier"
)

// Policy says, per channel namespace (the first segment), who may publish
// and who may subscribe. Everything it does not open is denied: a namespace
// that is not listed, and an operation whose rule list is empty.
// [New] keeps its own copy.
type Policy struct {
	// Namespaces maps a namespace (a valid channel segment) to its rules.
	Namespaces map[string]NamespacePolicy
}

// NamespacePolicy lists the rules of one namespace. An operation is allowed
// when any one of its rules allows it.
type NamespacePolicy struct {
	// Publish lists who may publish; empty means nobody.
	Publish []Rule
	// Subscribe lists who may subscribe; empty means nobody.
	Subscribe []Rule
}

// Rule is one way to be allowed an operation on a channel.
type Rule string

// Rules. A group rule is "group:<name>" (see [GroupRule]).
const (
	// RuleOwner allows a channel whose second segment is the caller's
	// ChannelID (/ns/<own id>/...). A wildcard is allowed only when every
	// channel it matches is the caller's: /ns/<own id>/* is, /ns/* is not.
	RuleOwner Rule = "owner"
	// RuleAuthenticated allows any verified caller.
	RuleAuthenticated Rule = "authenticated"
	// RuleService allows only Gatehouse services (identity.KindService).
	RuleService Rule = "service"
	// RuleDeny allows nobody; it must be the only rule of its list.
	RuleDeny Rule = "deny"
	// groupRulePrefix starts a group rule.
	groupRulePrefix = "group:"
)

// GroupRule returns the rule allowing members of group name.
func GroupRule(name string) Rule { return Rule(groupRulePrefix + name) }

// group returns the group name of a group rule.
func (r Rule) group() (string, bool) {
	return strings.CutPrefix(string(r), groupRulePrefix)
}

// DefaultPolicy is the chat protocol's policy: a caller may publish to
// /Inbound-Messages/<own ChannelID> and subscribe to
// /Outbound-Messages/<own ChannelID> (or below it); only services publish
// outbound. Nobody subscribes to inbound channels through the edge: chat
// reads them from JetStream, so that is service-only.
func DefaultPolicy() Policy {
	return Policy{Namespaces: map[string]NamespacePolicy{
		bus.NamespaceInbound: {
			Publish:   []Rule{RuleOwner},
			Subscribe: []Rule{RuleService},
		},
		bus.NamespaceOutbound: {
			Publish:   []Rule{RuleService},
			Subscribe: []Rule{RuleOwner, RuleService},
		},
	}}
}

// clone returns a deep copy of p, so that a caller changing its maps or
// slices later cannot race with the service.
func (p Policy) clone() Policy {
	if p.Namespaces == nil {
		return p
	}
	out := Policy{Namespaces: make(map[string]NamespacePolicy, len(p.Namespaces))}
	for ns, np := range p.Namespaces {
		out.Namespaces[ns] = NamespacePolicy{Publish: slices.Clone(np.Publish), Subscribe: slices.Clone(np.Subscribe)}
	}
	return out
}

// Validate reports the first problem with p: a namespace that is not a
// valid channel segment, an unknown rule, a group rule without a valid
// name, or "deny" mixed with other rules.
func (p Policy) Validate() error {
	names := make([]string, 0, len(p.Namespaces))
	for ns := range p.Namespaces {
		names = append(names, ns)
	}
	sort.Strings(names) // report the same first problem every time
	for _, ns := range names {
		if !channel.ValidSegment(ns) {
			return fmt.Errorf("%w: namespace %q is not a valid channel segment", ErrInvalidPolicy, ns)
		}
		np := p.Namespaces[ns]
		if err := validateRules(np.Publish); err != nil {
			return fmt.Errorf("%w: namespace %s, %s: %v", ErrInvalidPolicy, ns, bus.OpPublish, err)
		}
		if err := validateRules(np.Subscribe); err != nil {
			return fmt.Errorf("%w: namespace %s, %s: %v", ErrInvalidPolicy, ns, bus.OpSubscribe, err)
		}
	}
	return nil
}

func validateRules(rules []Rule) error {
	for _, r := range rules {
		switch r {
		case RuleOwner, RuleAuthenticated, RuleService:
		case RuleDeny:
			if len(rules) > 1 {
				return fmt.Errorf("rule %q must be the only rule", r)
			}
		default:
			g, ok := r.group()
			if !ok {
				return fmt.Errorf("unknown rule %q (want owner, authenticated, service, deny or group:<name>)", r)
			}
			if g == "" || len(g) > verifier.MaxClaimBytes || strings.ContainsFunc(g, func(c rune) bool { return c <= ' ' }) {
				return fmt.Errorf("rule %q needs a group name of 1 to %d bytes without spaces", r, verifier.MaxClaimBytes)
			}
		}
	}
	return nil
}
