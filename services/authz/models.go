package authz

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/authz/internal/verifier"
)

// Limits of model names and patterns.
const (
	// MaxModelIDBytes bounds a model id in a check and a model pattern.
	MaxModelIDBytes = 256
	// MaxModelPatterns bounds each list of model patterns.
	MaxModelPatterns = 256
)

// ModelPolicy says which models a caller may invoke. Each list holds model
// ids or path.Match globs ("anthropic.*", "*"). A caller may invoke a model
// matched by Default, by the list of its plan, or by the list of any of its
// groups; everything else is denied. An API key's own model list narrows
// this further, never widens it.
type ModelPolicy struct {
	// Default lists the models every verified caller may invoke.
	Default []string
	// Plans maps a plan name to the models its callers may invoke.
	Plans map[string][]string
	// Groups maps a group name to the models its members may invoke.
	Groups map[string][]string
}

// DefaultModelPolicy lets every verified caller invoke every model; it
// applies while no model policy is configured.
func DefaultModelPolicy() ModelPolicy { return ModelPolicy{Default: []string{"*"}} }

func (m ModelPolicy) configured() bool {
	return m.Default != nil || m.Plans != nil || m.Groups != nil
}

// Validate reports the first bad pattern or name.
func (m ModelPolicy) Validate() error {
	if err := validModelPatterns("Default", m.Default); err != nil {
		return err
	}
	for _, kind := range []struct {
		name string
		m    map[string][]string
	}{{"Plans", m.Plans}, {"Groups", m.Groups}} {
		keys := make([]string, 0, len(kind.m))
		for k := range kind.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "" || len(k) > verifier.MaxClaimBytes {
				return fmt.Errorf("%w: models.%s: name %q must be 1 to %d bytes", ErrInvalidPolicy, strings.ToLower(kind.name), k, verifier.MaxClaimBytes)
			}
			if err := validModelPatterns(kind.name+"["+k+"]", kind.m[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

func validModelPatterns(where string, pats []string) error {
	if len(pats) > MaxModelPatterns {
		return fmt.Errorf("%w: models %s: %d patterns, at most %d", ErrInvalidPolicy, where, len(pats), MaxModelPatterns)
	}
	for _, p := range pats {
		if err := validModelPattern(p); err != nil {
			return fmt.Errorf("%w: models %s: %v", ErrInvalidPolicy, where, err)
		}
	}
	return nil
}

func validModelPattern(p string) error {
	if p == "" || len(p) > MaxModelIDBytes || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("pattern %q must be 1 to %d bytes without spaces or control characters", clipText(p), MaxModelIDBytes)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("pattern %q is not a valid glob: %v", clipText(p), err)
	}
	return nil
}

func (m ModelPolicy) clone() ModelPolicy {
	out := ModelPolicy{Default: slices.Clone(m.Default)}
	cp := func(in map[string][]string) map[string][]string {
		if in == nil {
			return nil
		}
		o := make(map[string][]string, len(in))
		for k, v := range in {
			o[k] = slices.Clone(v)
		}
		return o
	}
	out.Plans, out.Groups = cp(m.Plans), cp(m.Groups)
	return out
}

// matchAny reports whether model matches one of pats.
func matchAny(pats []string, model string) bool {
	for _, p := range pats {
		if ok, _ := path.Match(p, model); ok {
			return true
		}
	}
	return false
}

// decideModel answers an invoke check. keyModels is the API key's own
// model list (nil when the caller is not an API key or the key has none).
func (m ModelPolicy) decideModel(id identity.Identity, model string, keyModels []string, now time.Time, skew time.Duration) bus.CheckResponse {
	switch {
	case model == "":
		return deny("no model given")
	case len(model) > MaxModelIDBytes || strings.ContainsFunc(model, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return deny(fmt.Sprintf("model id must be 1 to %d bytes without spaces or control characters", MaxModelIDBytes))
	case strings.ContainsAny(model, `*?[\`):
		return deny("model id " + clipText(model) + " must be an exact model id, not a pattern")
	case id.Sub == "":
		return deny("the request carries no verified identity")
	case !id.ExpiresAt.IsZero() && now.After(id.ExpiresAt.Add(skew)):
		return deny("the caller's credential expired at " + id.ExpiresAt.UTC().Format(time.RFC3339))
	}
	allowed := matchAny(m.Default, model) || (id.Plan != "" && matchAny(m.Plans[id.Plan], model))
	for _, g := range id.Groups {
		if allowed {
			break
		}
		allowed = matchAny(m.Groups[g], model)
	}
	if !allowed {
		plan := id.Plan
		if plan == "" {
			plan = "(none)"
		}
		return deny(fmt.Sprintf("model %s is not available to plan %s or the caller's groups", clipText(model), plan))
	}
	if keyModels != nil && !matchAny(keyModels, model) {
		return deny(fmt.Sprintf("model %s is outside the API key's scope", clipText(model)))
	}
	return bus.CheckResponse{Allow: true}
}
