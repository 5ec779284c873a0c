package systemtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/gatehouse-ai/gatehouse/services/meter"
)

// usageGet calls GET /v1/usage with token and returns the status and body.
func usageGet(ctx context.Context, t *testing.T, dev interface {
	EdgeURL() string
	CAFile() string
}, token string, params url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, dev.EdgeURL()+"/v1/usage?"+params.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", token)
	resp, err := httpClientTrusting(t, dev.CAFile()).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// TestUsageAPIPostgres: answers recorded in the Postgres ledger are
// visible over GET /v1/usage to their owner, grouped; another user may not
// look; an admin sees everyone's.
func TestUsageAPIPostgres(t *testing.T) {
	t.Parallel()
	dbURL := postgresSchema(t)
	dev := startDev(t, devConfig(t, dbURL))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := must(dev.Issuer().Mint(authz.DevClaims{Sub: "alice"}))
	bob := must(dev.Issuer().Mint(authz.DevClaims{Sub: "bob"}))
	admin := must(dev.Issuer().Mint(authz.DevClaims{Sub: "root", Groups: []string{meter.DefaultAdminGroup}}))

	from := time.Now().UTC().Add(-time.Minute)
	aliceEvents, aliceReq := chatRoundTrip(ctx, t, dev.EdgeURL(), dev.CAFile(), alice, "alice")
	_, bobReq := chatRoundTrip(ctx, t, dev.EdgeURL(), dev.CAFile(), bob, "bob")
	waitLedgerRows(t, "pgx", dbURL, aliceReq)
	waitLedgerRows(t, "pgx", dbURL, bobReq)
	to := time.Now().UTC().Add(time.Minute)
	rng := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}

	var meta *bus.Metadata
	for _, ev := range aliceEvents {
		if ev.Metadata != nil {
			meta = ev.Metadata
		}
	}
	params := url.Values{"group_by": {"model"}}
	for k, v := range rng {
		params[k] = v
	}
	code, body := usageGet(ctx, t, dev, alice, params)
	if code != http.StatusOK {
		t.Fatalf("alice's usage: %d %s", code, body)
	}
	var got struct {
		Sub  string         `json:"sub"`
		Rows []bus.UsageRow `json:"rows"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := []bus.UsageRow{{Group: "echo", Requests: 1, InputTokens: meta.Usage.InputTokens,
		OutputTokens: meta.Usage.OutputTokens, TotalTokens: meta.Usage.TotalTokens}}
	if got.Sub != "alice" || !slices.Equal(got.Rows, want) {
		t.Errorf("alice sees %s, want rows %+v", body, want)
	}

	params.Set("sub", "alice")
	if code, body := usageGet(ctx, t, dev, bob, params); code != http.StatusForbidden {
		t.Errorf("bob asking for alice's usage: %d %s, want 403", code, body)
	}

	params.Set("sub", "*")
	params.Set("group_by", "user")
	code, body = usageGet(ctx, t, dev, admin, params)
	if code != http.StatusOK {
		t.Fatalf("admin: %d %s", code, body)
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Rows) != 2 || got.Rows[0].Group != "alice" || got.Rows[1].Group != "bob" || got.Rows[0].Requests != 1 || got.Rows[1].Requests != 1 {
		t.Errorf("admin sees %s, want one request each for alice and bob", body)
	}
}
