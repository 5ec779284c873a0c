package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// keysTimeout bounds one key management request.
const keysTimeout = 10 * time.Second

const keysUsage = `Usage:
  gatehouse keys create --owner SUB [--name N] [--tenant T] [--plan P] [--groups a,b]
                        [--models m1,glob*] [--namespaces Inbound-Messages,...] [--ttl 720h]
  gatehouse keys list [--owner SUB] [--revoked] [--json]
  gatehouse keys revoke ID [--reason TEXT]

The command talks to the authz service over NATS (--nats-url, NATS_URL), so the key is
stored by authz and a revocation is broadcast to every edge and authz replica at once.
For "gatehouse dev", start it with --nats-listen 127.0.0.1:4222.
`

// cmdKeys manages API keys through authz over NATS. Holding NATS
// credentials is what makes the caller trusted (only Gatehouse services and
// operators hold them), so the CLI acts as a service identity.
func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: give create, list or revoke")
	}
	sub, rest := args[0], args[1:]
	var c common
	fs := newFlagSet("keys "+sub, stderr, &c)
	var (
		owner      = fs.String("owner", "", "`sub` the key acts for (create: required; list: filter)")
		name       = fs.String("name", "", "label of the key")
		issuer     = fs.String("issuer", "", "issuer of the owner (default: the dev issuer)")
		tenant     = fs.String("tenant", "", "tenant of the key's identity")
		plan       = fs.String("plan", "", "plan of the key's identity")
		groups     = fs.String("groups", "", "comma-separated groups of the key's identity")
		models     = fs.String("models", "", "comma-separated models or globs the key may invoke (default: what the plan allows)")
		namespaces = fs.String("namespaces", "", "comma-separated channel namespaces the key may use (default: what the policy allows)")
		ttl        = fs.Duration("ttl", 0, "lifetime (0: no expiry)")
		revoked    = fs.Bool("revoked", false, "list: include revoked keys")
		asJSON     = fs.Bool("json", false, "print JSON")
		reason     = fs.String("reason", "", "revoke: why")
	)
	if sub == "revoke" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		rest = append(rest[1:], rest[0]) // allow "revoke ID --reason x"
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	cfg, err := c.loadValid()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, keysTimeout)
	defer cancel()
	nc, err := connectAdmin(ctx, cfg, "keys", stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	subj := bus.NewSubjects(cfg.NATS.Prefix)
	caller := cliIdentity()
	switch sub {
	case "create":
		if *owner == "" {
			return errors.New("keys create: --owner is required")
		}
		resp, err := bus.Request[bus.KeyCreateResponse](ctx, nc, subj.AuthzKeysCreate(), bus.KeyCreateRequest{
			Caller: caller, Name: *name, Owner: *owner, Issuer: *issuer, Tenant: *tenant, Plan: *plan,
			Groups: splitList(*groups), Models: splitList(*models), Namespaces: splitList(*namespaces), TTL: *ttl,
		}, nil)
		if err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(resp)
		}
		fmt.Fprintf(stdout, "%s\n", resp.Secret)
		fmt.Fprintf(stderr, "created key %s for %s; the key above is shown only once\n", resp.Key.ID, resp.Key.Owner)
		return nil
	case "list":
		resp, err := bus.Request[bus.KeyListResponse](ctx, nc, subj.AuthzKeysList(), bus.KeyListRequest{Caller: caller, Owner: *owner, IncludeRevoked: *revoked}, nil)
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(resp)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tOWNER\tTENANT\tPLAN\tMODELS\tNAMESPACES\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
		for _, k := range resp.Keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, dash(k.Name), k.Owner, dash(k.Tenant), dash(k.Plan),
				dash(strings.Join(k.Models, ",")), dash(strings.Join(k.Namespaces, ",")), when(k.CreatedAt), when(k.ExpiresAt), when(k.LastUsedAt), when(k.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("keys revoke: give exactly one key id")
		}
		resp, err := bus.Request[bus.KeyRevokeResponse](ctx, nc, subj.AuthzKeysRevoke(), bus.KeyRevokeRequest{Caller: caller, ID: fs.Arg(0), Reason: *reason}, nil)
		if err != nil {
			return fmt.Errorf("keys revoke: %w", err)
		}
		fmt.Fprintf(stdout, "revoked %s at %s\n", resp.Key.ID, resp.Key.RevokedAt.Format(time.RFC3339))
		return nil
	default:
		fmt.Fprint(stderr, keysUsage)
		return fmt.Errorf("keys: unknown subcommand %q (want create, list or revoke)", sub)
	}
}

// cliIdentity is the identity the CLI acts as: a service, named for the
// operating-system user so the audit trail says who created a key.
func cliIdentity() identity.Identity {
	name := "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = "cli:" + u.Username
	}
	return identity.Identity{Sub: name, Issuer: "gatehouse-cli", ChannelID: "gatehouse-cli", Kind: identity.KindService}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
