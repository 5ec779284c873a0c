package verifier

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/authz/internal/jwk"
)

// MaxJWKSBytes bounds a fetched key set or discovery document.
const MaxJWKSBytes = 1 << 20

// JWKSConfig configures a [JWKS] key set.
type JWKSConfig struct {
	// URL is the issuer's jwks_uri. When empty, it is read from the OIDC
	// discovery document at Issuer + "/.well-known/openid-configuration".
	URL string
	// Issuer is the issuer URL, used for discovery; the discovery document's
	// issuer must equal it.
	Issuer string
	// Client fetches the documents; nil means a client with Timeout.
	Client *http.Client
	// MinRefresh is the shortest time between two fetches: an unknown kid
	// triggers a fetch at most this often, so a flood of forged kids cannot
	// turn into a flood of requests to the issuer.
	MinRefresh time.Duration
	// MaxAge is how long fetched keys are used before they are fetched again.
	MaxAge time.Duration
	// Timeout bounds one fetch.
	Timeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// JWKS is a [KeySet] fetched over HTTPS from an issuer's jwks_uri, cached,
// and fetched again when it is older than MaxAge or when a token names a key
// id it does not hold (at most once per MinRefresh). A failed fetch keeps
// the keys already held. It is safe for concurrent use.
type JWKS struct {
	cfg JWKSConfig

	fetchMu sync.Mutex // serialises fetches; held while fetching. Lock order: fetchMu, then mu.
	jwksURL string     // resolved jwks_uri; guarded by fetchMu
	last    time.Time  // last fetch attempt; guarded by fetchMu

	mu      sync.RWMutex
	keys    map[string]crypto.PublicKey
	fetched time.Time
}

var _ KeySet = (*JWKS)(nil)

// NewJWKS returns a key set for cfg. It fetches nothing until a key is
// asked for.
func NewJWKS(cfg JWKSConfig) (*JWKS, error) {
	if cfg.URL == "" && cfg.Issuer == "" {
		return nil, fmt.Errorf("%w: a JWKS needs a URL or an issuer for discovery", ErrInvalidConfig)
	}
	if cfg.MinRefresh <= 0 || cfg.MaxAge <= 0 || cfg.Timeout <= 0 {
		return nil, fmt.Errorf("%w: JWKS MinRefresh, MaxAge and Timeout must be above 0", ErrInvalidConfig)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &JWKS{cfg: cfg, jwksURL: cfg.URL}, nil
}

// Key returns the key with id kid, fetching the set when needed.
func (j *JWKS) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	now := j.cfg.Now()
	j.mu.RLock()
	k, ok := j.keys[kid]
	fresh := !j.fetched.IsZero() && now.Sub(j.fetched) < j.cfg.MaxAge
	j.mu.RUnlock()
	if ok && fresh {
		return k, nil
	}
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	// Another caller may have fetched while this one waited.
	j.mu.RLock()
	k, ok = j.keys[kid]
	fetchedSince := j.fetched.After(now) || j.fetched.Equal(now)
	j.mu.RUnlock()
	if ok && (fetchedSince || now.Sub(j.fetched) < j.cfg.MaxAge) {
		return k, nil
	}
	if !j.last.IsZero() && now.Sub(j.last) < j.cfg.MinRefresh {
		if ok {
			return k, nil // stale but usable until the next allowed fetch
		}
		return nil, refuse(ErrUnknownKey, "token key id %q is not known (the issuer's keys were fetched %s ago)", clip(kid), now.Sub(j.last).Round(time.Millisecond))
	}
	j.last = now
	keys, err := j.fetch(ctx)
	if err != nil {
		if ok {
			return k, nil
		}
		return nil, fmt.Errorf("%w: %w", ErrKeyFetch, err)
	}
	j.mu.Lock()
	j.keys, j.fetched = keys, j.cfg.Now()
	j.mu.Unlock()
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, refuse(ErrUnknownKey, "token key id %q is not known", clip(kid))
}

// fetch resolves the jwks_uri (by discovery when needed) and reads the set.
func (j *JWKS) fetch(ctx context.Context) (map[string]crypto.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, j.cfg.Timeout)
	defer cancel()
	if j.jwksURL == "" {
		disco := strings.TrimSuffix(j.cfg.Issuer, "/") + "/.well-known/openid-configuration"
		body, err := j.get(ctx, disco)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, fmt.Errorf("discovery document %s is not JSON: %v", disco, err)
		}
		if doc.Issuer != j.cfg.Issuer {
			return nil, fmt.Errorf("discovery document %s names issuer %q, want %q", disco, doc.Issuer, j.cfg.Issuer)
		}
		if !strings.HasPrefix(doc.JWKSURI, "https://") && !strings.HasPrefix(doc.JWKSURI, "http://") {
			return nil, fmt.Errorf("discovery document %s has no http(s) jwks_uri", disco)
		}
		j.jwksURL = doc.JWKSURI
	}
	body, err := j.get(ctx, j.jwksURL)
	if err != nil {
		return nil, err
	}
	return jwk.ParseSet(body)
}

func (j *JWKS) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	if len(body) > MaxJWKSBytes {
		return nil, fmt.Errorf("fetch %s: document larger than %d bytes", url, MaxJWKSBytes)
	}
	return body, nil
}
