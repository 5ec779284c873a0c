package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadLayers(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "g.yaml")
	yml := "data_dir: /srv/gh\nedge:\n  addr: \":9443\"\n  keep_alive: 20s\nchat:\n  concurrency: 4\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, []string{
		"GATEHOUSE_CHAT__CONCURRENCY=8",
		"GATEHOUSE_EDGE__ALLOWED_ORIGINS=[https://a.example, https://b.example]",
		"DATABASE_URL=postgres://u:secret@db/x",
		"NATS_URL=nats://n:4222",
		"GATEHOUSE_TEST_DATABASE_URL=ignored",
		"UNRELATED=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/srv/gh" || cfg.Edge.Addr != ":9443" || cfg.Edge.KeepAlive != 20*time.Second {
		t.Errorf("file not applied: %+v", cfg)
	}
	if cfg.Chat.Concurrency != 8 {
		t.Errorf("env did not override file: %d", cfg.Chat.Concurrency)
	}
	if len(cfg.Edge.AllowedOrigins) != 2 || cfg.NATS.URL != "nats://n:4222" || cfg.Meter.DatabaseURL != "postgres://u:secret@db/x" {
		t.Errorf("env not applied: %+v", cfg)
	}
	if cfg.Meter.BatchSize != 500 {
		t.Errorf("default lost: %d", cfg.Meter.BatchSize)
	}
	out, _ := cfg.Masked()
	if strings.Contains(string(out), "secret") || !strings.Contains(string(out), "u:****@db/x") {
		t.Errorf("secret not masked:\n%s", out)
	}
}

func TestUnknownKeysAreErrors(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "g.yaml")
	_ = os.WriteFile(path, []byte("edge:\n  adress: x\n"), 0o600)
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), "adress") {
		t.Errorf("unknown file key: %v", err)
	}
	if _, err := Load("", []string{"GATEHOUSE_EDGE__PORTT=1"}); err == nil || !strings.Contains(err.Error(), "portt") {
		t.Errorf("unknown env key: %v", err)
	}
	if _, err := Load("", []string{"GATEHOUSE_CHAT__CONCURRENCY=many"}); err == nil {
		t.Error("bad type accepted")
	}
}

func TestValidateNamesTheField(t *testing.T) {
	t.Parallel()
	cases := map[string]func(*Config){
		"log_level":                 func(c *Config) { c.LogLevel = "loud" },
		"gc_heap_floor":             func(c *Config) { c.GCHeapFloor = -1 },
		"nats.prefix":               func(c *Config) { c.NATS.Prefix = "a.>" },
		"nats.inbound_storage":      func(c *Config) { c.NATS.InboundStorage = "disk" },
		"nats.max_request_bytes":    func(c *Config) { c.NATS.MaxRequestBytes = 1000 },
		"edge.tls_cert":             func(c *Config) { c.Edge.TLSCert = "x" },
		"edge.keep_alive":           func(c *Config) { c.Edge.KeepAlive = time.Minute },
		"chat.concurrency":          func(c *Config) { c.Chat.Concurrency = 0 },
		"chat.cache_index_max_keys": func(c *Config) { c.Chat.CacheIndexMaxKeys = -2 },
		"chat.max_messages":         func(c *Config) { c.Chat.MaxMessages = -1 },
		"chat.models[0].request_fields": func(c *Config) {
			c.Chat.Models = []ChatModel{{ID: "m", Provider: "echo", MaxTokens: 1, RequestFields: map[string]any{"when": make(chan int)}}}
		},
		"chat.models[0].reasoning_effort.extreme: \"extreme\" is not a reasoning effort; use none, minimal, low, medium, high, xhigh, max": func(c *Config) {
			c.Chat.Models = []ChatModel{{ID: "m", Provider: "echo", MaxTokens: 1, ReasoningEffort: map[string]any{"extreme": map[string]any{}}}}
		},
		"chat.models[1].reasoning_effort.low: must be a map": func(c *Config) {
			c.Chat.Models = []ChatModel{{ID: "e", Provider: "echo", MaxTokens: 1}, {ID: "m", Provider: "echo", MaxTokens: 1, ReasoningEffort: map[string]any{"low": "low"}}}
		},
		"chat.models[0].reasoning_effort.high: must be plain JSON values": func(c *Config) {
			c.Chat.Models = []ChatModel{{ID: "m", Provider: "echo", MaxTokens: 1, ReasoningEffort: map[string]any{"high": map[string]any{"when": make(chan int)}}}}
		},
		"chat.max_input_bytes":       func(c *Config) { c.Chat.MaxInputBytes = -1 },
		"chat.max_output_tokens":     func(c *Config) { c.Chat.MaxOutputTokens = -1 },
		"meter.database_url":         func(c *Config) { c.Meter.DatabaseURL = "mysql://x" },
		"meter.ledger_writers":       func(c *Config) { c.Meter.LedgerWriters = 9 },
		"cache.ttl":                  func(c *Config) { c.Cache.TTL = 0 },
		"cache.max_index_keys":       func(c *Config) { c.Cache.MaxIndexKeys = -2 },
		"edge.max_subscriptions_per": func(c *Config) { c.Edge.MaxSubscriptionsPerConn = 0 },
	}
	for field, mutate := range cases {
		c := Default()
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v", field, err)
		}
	}
}

// TestReasoningEffortYAML reads a model's reasoning_effort mappings from
// the configuration file.
func TestReasoningEffortYAML(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "g.yaml")
	yml := `chat:
  providers: [{name: aws, type: bedrock}]
  models:
    - id: claude
      provider: aws
      max_tokens: 8192
      reasoning_effort:
        low: {thinking: {type: enabled, budget_tokens: 1024}}
        high: {thinking: {type: enabled, budget_tokens: 16384}}
`
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(c.Chat.Models[0].ReasoningEffort)
	if want := `{"high":{"thinking":{"budget_tokens":16384,"type":"enabled"}},"low":{"thinking":{"budget_tokens":1024,"type":"enabled"}}}`; string(got) != want {
		t.Fatalf("reasoning_effort %s, want %s", got, want)
	}
}

// TestCapabilitiesYAML reads a model's vision and tools flags from the
// configuration file: absent is true, and a value that is not a boolean
// is an error naming the setting.
func TestCapabilitiesYAML(t *testing.T) {
	t.Parallel()
	load := func(t *testing.T, yml string) (Config, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "g.yaml")
		if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(path, nil)
	}
	c, err := load(t, `chat:
  models:
    - {id: plain, provider: echo, max_tokens: 10}
    - {id: text-only, provider: echo, max_tokens: 10, vision: false, tools: false}
    - {id: explicit, provider: echo, max_tokens: 10, vision: true, tools: true}
    - {id: blind, provider: echo, max_tokens: 10, vision: false}
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]bool{"plain": {true, true}, "text-only": {false, false}, "explicit": {true, true}, "blind": {false, true}}
	for _, m := range c.Chat.Models {
		if got := [2]bool{m.ReadsImages(), m.CallsTools()}; got != want[m.ID] {
			t.Errorf("%s: vision, tools %v, want %v", m.ID, got, want[m.ID])
		}
	}
	if m := c.Chat.Models[0]; m.Vision != nil || m.Tools != nil {
		t.Errorf("absent flags decoded as %v, %v; want nil", m.Vision, m.Tools)
	}
	if _, err := load(t, "chat:\n  models:\n    - {id: m, provider: echo, max_tokens: 10, vision: sometimes}\n"); err == nil ||
		!strings.Contains(err.Error(), "chat.models.vision: cannot unmarshal !!str `sometimes` into bool") {
		t.Errorf("vision: sometimes: %v", err)
	}
}

func TestInboundStorage(t *testing.T) {
	t.Parallel()
	if s := Default().NATS.InboundStorage; s != "file" {
		t.Errorf("default nats.inbound_storage %q, want file", s)
	}
	c, err := Load("", []string{"GATEHOUSE_NATS__INBOUND_STORAGE=memory"})
	if err != nil || c.NATS.InboundStorage != "memory" || c.Validate() != nil {
		t.Fatalf("GATEHOUSE_NATS__INBOUND_STORAGE=memory: %q, %v, %v", c.NATS.InboundStorage, err, c.Validate())
	}
	c, err = Load("", []string{"GATEHOUSE_NATS__INBOUND_STORAGE=disk"})
	if err != nil {
		t.Fatal(err)
	}
	const want = `nats.inbound_storage: "disk" is not one of file, memory`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Fatalf("disk: got %v, want %s", err, want)
	}
}

func TestGCHeapFloorFromEnv(t *testing.T) {
	t.Parallel()
	c, err := Load("", []string{"GATEHOUSE_GC_HEAP_FLOOR=0"})
	if err != nil || c.GCHeapFloor != 0 {
		t.Fatalf("GATEHOUSE_GC_HEAP_FLOOR=0: floor %d, %v; want 0 (off)", c.GCHeapFloor, err)
	}
	if d := Default().GCHeapFloor; d != 64<<20 {
		t.Fatalf("default floor %d, want 64 MiB", d)
	}
	c = Default()
	c.GCHeapFloor = 32 << 30
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "gc_heap_floor") {
		t.Fatalf("32 GiB floor: %v, want a gc_heap_floor error", err)
	}
}
