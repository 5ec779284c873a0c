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
	// GCHeapFloor is the heap size in bytes below which the Go garbage
	// collector does not start a cycle (package pkg/gcfloor): it trades
	// up to this much memory for far fewer collections while little is
	// live, which cuts tail latency. A process with more than half of it
	// live behaves as without it. 0 turns it off; an explicit GOGC
	// environment variable also does. Default 64 MiB.
	GCHeapFloor int64 `yaml:"gc_heap_floor"`
	NATS        NATS  `yaml:"nats"`
	Edge        Edge  `yaml:"edge"`
	Authz       Authz `yaml:"authz"`
	Chat        Chat  `yaml:"chat"`
	Meter       Meter `yaml:"meter"`
	Cache       Cache `yaml:"cache"`
}

// maxGCHeapFloor bounds gc_heap_floor: 16 GiB.
const maxGCHeapFloor = 16 << 30

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		LogLevel: "info",
		DataDir:  ".gatehouse",
		// 64 MiB: gcfloor.DefaultFloor (not imported: config stays free of
		// runtime packages).
		GCHeapFloor: 64 << 20,
		NATS:        NATS{URL: "nats://127.0.0.1:4222", Prefix: bus.DefaultPrefix, InboundStorage: bus.StorageFile},
		Edge:        Edge{Addr: ":8443", KeepAlive: 30 * time.Second, MaxSubscriptionsPerConn: 200, SendQueueLen: 256, Metrics: true},
		Authz:       Authz{DevIssuerURL: "https://localhost:8443/dev", Audience: "gatehouse"},
		Chat:        Chat{Concurrency: 32},
		Meter:       Meter{BatchSize: 500, FlushInterval: 200 * time.Millisecond},
		Cache:       Cache{TTL: 24 * time.Hour, MaxBytes: 256 << 20},
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
		return Config{}, fmt.Errorf("config: %s: %w", where, namedDecodeError(merged, err))
	}
	return cfg, nil
}

// namedDecodeError rewrites the "line N:" of each decoding error into the
// setting's dotted name (for example "edge.metrics:"): the lines are those
// of the merged document of file and environment, which the user never
// sees. Errors it cannot place are returned as they are.
func namedDecodeError(merged []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var root yaml.Node
	if yaml.Unmarshal(merged, &root) != nil {
		return err
	}
	names := map[int]string{}
	settingNames(&root, "", names)
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = m
		var line int
		if _, serr := fmt.Sscanf(m, "line %d:", &line); serr == nil {
			if name, ok := names[line]; ok {
				msgs[i] = name + ":" + strings.TrimPrefix(m, fmt.Sprintf("line %d:", line))
			}
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// settingNames records, for each line of n, the dotted name of the setting
// written there.
func settingNames(n *yaml.Node, prefix string, out map[int]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			settingNames(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			name := k.Value
			if prefix != "" {
				name = prefix + "." + name
			}
			out[k.Line] = name
			out[v.Line] = name
			settingNames(v, name, out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if _, ok := out[c.Line]; !ok {
				out[c.Line] = prefix
			}
			settingNames(c, prefix, out)
		}
	}
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

// Validate reports every invalid setting, each naming its key.
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
	if c.GCHeapFloor < 0 || c.GCHeapFloor > maxGCHeapFloor {
		errs = append(errs, fmt.Errorf("gc_heap_floor: %d bytes is outside 0 (off) to %d (16 GiB); the default is 67108864 (64 MiB)", c.GCHeapFloor, int64(maxGCHeapFloor)))
	}
	errs = append(errs, c.NATS.validate()...)
	errs = append(errs, c.Edge.validate()...)
	errs = append(errs, c.Authz.validate()...)
	errs = append(errs, c.Chat.validate()...)
	errs = append(errs, c.Meter.validate()...)
	errs = append(errs, c.Cache.validate()...)
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
