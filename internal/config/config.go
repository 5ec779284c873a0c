package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable that sets configuration.
const EnvPrefix = "GATEHOUSE_"

// Config is the whole configuration of the gatehouse binary. Every field has
// a default (see [Default]); `gatehouse dev` needs no configuration at all.
type Config struct {
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// DataDir holds the embedded NATS store, the SQLite ledger, the dev
	// issuer key and the dev TLS certificates. Default ./.gatehouse.
	DataDir string `yaml:"data_dir"`
	NATS    NATS   `yaml:"nats"`
	Edge    Edge   `yaml:"edge"`
	Authz   Authz  `yaml:"authz"`
	Chat    Chat   `yaml:"chat"`
	Meter   Meter  `yaml:"meter"`
	Cache   Cache  `yaml:"cache"`
}

// NATS configures the bus.
type NATS struct {
	// URL of the NATS server for single-service commands. Default
	// nats://127.0.0.1:4222; also read from NATS_URL.
	URL string `yaml:"url"`
	// Prefix starts every subject. Default "gh".
	Prefix string `yaml:"prefix"`
	// Listen, for `gatehouse dev` only, opens the embedded server's client
	// port on this host:port (e.g. 127.0.0.1:4223). Default: no listener,
	// services connect in-process.
	Listen string `yaml:"listen"`
}

// Edge configures the public listener.
type Edge struct {
	// Addr is the listen address. Default :8443.
	Addr string `yaml:"addr"`
	// TLSCert and TLSKey are PEM files; without them a local development CA
	// and certificate are generated in DataDir/tls.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// PlainHTTP serves without TLS, for use behind a TLS-terminating proxy.
	PlainHTTP bool `yaml:"plain_http"`
	// AllowedOrigins is the WebSocket Origin allowlist; empty allows any.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// KeepAlive is the interval of "ka" messages (< 60s). Default 30s.
	KeepAlive time.Duration `yaml:"keep_alive"`
	// MaxSubscriptionsPerConn bounds subscriptions per socket. Default 200.
	MaxSubscriptionsPerConn int `yaml:"max_subscriptions_per_conn"`
	// SendQueueLen bounds each socket's outgoing queue. Default 256.
	SendQueueLen int `yaml:"send_queue_len"`
}

// Authz configures identity.
type Authz struct {
	// DevIssuerURL is the `iss` of tokens minted by the development issuer.
	// Default https://localhost:8443/dev.
	DevIssuerURL string `yaml:"dev_issuer_url"`
	// Audience is the accepted `aud`. Default gatehouse.
	Audience string `yaml:"audience"`
}

// Chat configures the chat workers.
type Chat struct {
	// Concurrency is how many requests one replica handles at once. Default 32.
	Concurrency int `yaml:"concurrency"`
	// EchoDelay paces the echo model's chunks. Default 0 (as fast as possible);
	// `gatehouse dev` uses 30ms so streaming is visible.
	EchoDelay time.Duration `yaml:"echo_delay"`
}

// Meter configures the ledger.
type Meter struct {
	// DatabaseURL selects Postgres ("postgres://..."); also read from
	// DATABASE_URL. Empty uses SQLite at SQLitePath. Secret: masked in output.
	DatabaseURL string `yaml:"database_url"`
	// SQLitePath is the SQLite ledger file. Default DataDir/ledger.db.
	SQLitePath string `yaml:"sqlite_path"`
	// BatchSize is the most records per ledger transaction. Default 500.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest a record waits for its batch. Default 200ms.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// Cache configures the response cache.
type Cache struct {
	// TTL is how long an answer stays cached. Default 24h.
	TTL time.Duration `yaml:"ttl"`
	// MaxBytes bounds the cache bucket. Default 256 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		LogLevel: "info",
		DataDir:  ".gatehouse",
		NATS:     NATS{URL: "nats://127.0.0.1:4222", Prefix: bus.DefaultPrefix},
		Edge:     Edge{Addr: ":8443", KeepAlive: 30 * time.Second, MaxSubscriptionsPerConn: 200, SendQueueLen: 256},
		Authz:    Authz{DevIssuerURL: "https://localhost:8443/dev", Audience: "gatehouse"},
		Chat:     Chat{Concurrency: 32},
		Meter:    Meter{BatchSize: 500, FlushInterval: 200 * time.Millisecond},
		Cache:    Cache{TTL: 24 * time.Hour, MaxBytes: 256 << 20},
	}
}

// Load builds the configuration from defaults, the YAML file at path (if
// path is not empty), and environment variables from environ (os.Environ()
// form). It does not validate; call [Config.Validate] after applying flags.
func Load(path string, environ []string) (Config, error) {
	tree := map[string]any{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		if err := yaml.Unmarshal(data, &tree); err != nil {
			return Config{}, fmt.Errorf("config: %s: %w", path, err)
		}
		if tree == nil {
			tree = map[string]any{}
		}
	}
	if err := applyEnv(tree, environ); err != nil {
		return Config{}, err
	}
	cfg := Default()
	if len(tree) == 0 {
		return cfg, nil
	}
	merged, err := yaml.Marshal(tree)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(merged))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		where := "environment"
		if path != "" {
			where = path + " or environment"
		}
		return Config{}, fmt.Errorf("config: %s: %w", where, err)
	}
	return cfg, nil
}

// applyEnv overlays GATEHOUSE_A__B=v as tree[a][b]=v, plus the conventional
// NATS_URL and DATABASE_URL. Values are parsed as YAML scalars or flow
// sequences ("[a, b]"), so numbers, booleans and lists work.
func applyEnv(tree map[string]any, environ []string) error {
	aliases := map[string]string{"NATS_URL": "nats.url", "DATABASE_URL": "meter.database_url"}
	type kv struct{ path, val, name string }
	var sets []kv
	for _, e := range environ {
		name, val, ok := strings.Cut(e, "=")
		if !ok {
			continue
		}
		if p, ok := aliases[name]; ok && val != "" {
			sets = append(sets, kv{p, val, name})
			continue
		}
		if !strings.HasPrefix(name, EnvPrefix) || name == EnvPrefix+"CONFIG" {
			continue
		}
		if strings.HasPrefix(name, EnvPrefix+"TEST_") {
			continue // test settings, not configuration
		}
		p := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, EnvPrefix), "__", "."))
		sets = append(sets, kv{p, val, name})
	}
	for _, s := range sets {
		var v any
		if err := yaml.Unmarshal([]byte(s.val), &v); err != nil || v == nil {
			v = s.val
		}
		if _, isMap := v.(map[string]any); isMap {
			v = s.val
		}
		keys := strings.Split(s.path, ".")
		node := tree
		for i, k := range keys {
			if k == "" {
				return fmt.Errorf("config: environment variable %s: empty key segment", s.name)
			}
			if i == len(keys)-1 {
				node[k] = v
				break
			}
			next, ok := node[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				node[k] = next
			}
			node = next
		}
	}
	return nil
}

// Validate reports the first invalid setting, naming it.
func (c Config) Validate() error {
	var errs []error
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q is not one of debug, info, warn, error", c.LogLevel))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: must not be empty"))
	}
	if !bus.ValidPrefix(c.NATS.Prefix) {
		errs = append(errs, fmt.Errorf("nats.prefix: %q must be dot-separated tokens of letters, digits, '-' and '_'", c.NATS.Prefix))
	}
	if (c.Edge.TLSCert == "") != (c.Edge.TLSKey == "") {
		errs = append(errs, errors.New("edge.tls_cert and edge.tls_key: set both or neither"))
	}
	if c.Edge.KeepAlive <= 0 || c.Edge.KeepAlive >= time.Minute {
		errs = append(errs, fmt.Errorf("edge.keep_alive: %s must be above 0 and below 60s (AppSync clients time out at 60s)", c.Edge.KeepAlive))
	}
	if c.Edge.MaxSubscriptionsPerConn < 1 {
		errs = append(errs, errors.New("edge.max_subscriptions_per_conn: must be at least 1"))
	}
	if c.Edge.SendQueueLen < 1 {
		errs = append(errs, errors.New("edge.send_queue_len: must be at least 1"))
	}
	if c.Chat.Concurrency < 1 {
		errs = append(errs, errors.New("chat.concurrency: must be at least 1"))
	}
	if c.Chat.EchoDelay < 0 {
		errs = append(errs, errors.New("chat.echo_delay: must not be negative"))
	}
	if c.Meter.DatabaseURL != "" && !strings.HasPrefix(c.Meter.DatabaseURL, "postgres://") && !strings.HasPrefix(c.Meter.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("meter.database_url: must start with postgres:// (leave empty for SQLite)"))
	}
	if c.Meter.BatchSize < 1 {
		errs = append(errs, errors.New("meter.batch_size: must be at least 1"))
	}
	if c.Meter.FlushInterval <= 0 {
		errs = append(errs, errors.New("meter.flush_interval: must be above 0"))
	}
	if c.Cache.TTL <= 0 {
		errs = append(errs, errors.New("cache.ttl: must be above 0"))
	}
	if c.Cache.MaxBytes < 1<<20 {
		errs = append(errs, errors.New("cache.max_bytes: must be at least 1 MiB"))
	}
	return errors.Join(errs...)
}

// SQLitePath returns the ledger file, defaulting into DataDir.
func (c Config) SQLitePath() string {
	if c.Meter.SQLitePath != "" {
		return c.Meter.SQLitePath
	}
	return filepath.Join(c.DataDir, "ledger.db")
}

// Masked returns the configuration as YAML with secrets replaced.
func (c Config) Masked() ([]byte, error) {
	if c.Meter.DatabaseURL != "" {
		c.Meter.DatabaseURL = maskURL(c.Meter.DatabaseURL)
	}
	return yaml.Marshal(c)
}

func maskURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "****"
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return u
	}
	user, _, _ := strings.Cut(userinfo, ":")
	return scheme + "://" + user + ":****@" + host
}
