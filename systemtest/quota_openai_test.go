package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/internal/stack"
	"github.com/gatehouse-ai/gatehouse/services/authz"
)

// TestQuotaOpenAI429: over the OpenAI-compatible API, a request the plan
// refuses is a 429 whose Retry-After is the meter's retryAfter, and whose
// error names the limit.
func TestQuotaOpenAI429(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t, "")
	cfg.Meter.Plans = map[string]config.QuotaPlan{"one": {Day: config.QuotaLimits{Requests: 1}}}
	cfg.Meter.DefaultPlans.User = "one"
	dev := startDev(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	post := quotaPoster(t, ctx, dev, "alice")
	if resp, body := post("hello quota"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %d %s", resp.StatusCode, body)
	}
	if resp, body := post("hello quota"); resp.StatusCode != http.StatusOK {
		t.Fatalf("cached repeat (free on this plan): %d %s", resp.StatusCode, body)
	}
	resp, body := post("something new")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second request: %d %s, want 429", resp.StatusCode, body)
	}
	now := time.Now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	ra, err := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 64)
	if err != nil || ra < 1 || ra > int64(midnight.Sub(now)/time.Second)+60 {
		t.Errorf("Retry-After %q, want the seconds until UTC midnight (%s)", resp.Header.Get("Retry-After"), midnight.Sub(now))
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
			Code    string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "quota_exceeded" || !bytes.Contains([]byte(e.Error.Message), []byte("user day requests limit of 1")) {
		t.Errorf("error body %s", body)
	}
}

// TestCachedAnswersAreFree: on a plan that does not count cached answers,
// repeats answered from the cache use none of the plan's requests, and
// distinct requests still do.
func TestCachedAnswersAreFree(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t, "")
	cfg.Meter.Plans = map[string]config.QuotaPlan{"two": {Day: config.QuotaLimits{Requests: 2}}}
	cfg.Meter.DefaultPlans.User = "two"
	dev := startDev(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	post := quotaPoster(t, ctx, dev, "carol")
	for i, text := range []string{"hello cache", "hello cache", "hello cache", "something new"} {
		if resp, body := post(text); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d (%q): %d %s; cached repeats must not use the plan's 2 requests", i, text, resp.StatusCode, body)
		}
	}
	if resp, body := post("a third new one"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third distinct request: %d %s, want 429", resp.StatusCode, body)
	}
}

// quotaPoster returns a function that posts a chat completion of text for
// model echo as sub and returns the response and its body. Distinct texts
// are misses; a repeated one is a cache hit.
func quotaPoster(t *testing.T, ctx context.Context, dev *stack.Dev, sub string) func(text string) (*http.Response, []byte) {
	t.Helper()
	token := must(dev.Issuer().Mint(authz.DevClaims{Sub: sub}))
	client := httpClientTrusting(t, dev.CAFile())
	return func(text string) (*http.Response, []byte) {
		body := []byte(`{"model":"echo","messages":[{"role":"user","content":"` + text + `"}],"max_tokens":5}`)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, dev.EdgeURL()+"/v1/chat/completions", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
}
