package edge

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/edge/internal/devtls"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"plain http", Config{PlainHTTP: true}, true},
		{"dev tls", Config{DevTLSDir: "/tmp/x"}, true},
		{"cert and key", Config{TLSCertFile: "c", TLSKeyFile: "k"}, true},
		{"no tls choice", Config{}, false},
		{"two tls choices", Config{PlainHTTP: true, DevTLSDir: "/tmp/x"}, false},
		{"cert without key", Config{TLSCertFile: "c"}, false},
		{"bad prefix", Config{PlainHTTP: true, Prefix: "a.>"}, false},
		{"bad id", Config{PlainHTTP: true, ID: "a.b"}, false},
		{"keepalive too long", Config{PlainHTTP: true, KeepAliveInterval: time.Minute}, false},
		{"keepalive above connection timeout", Config{PlainHTTP: true, KeepAliveInterval: 20 * time.Second, ConnectionTimeout: 10 * time.Second}, false},
		{"negative limit", Config{PlainHTTP: true, SendQueueLen: -1}, false},
		{"event bigger than read limit", Config{PlainHTTP: true, MaxEventBytes: 2 << 20}, false},
		{"bad origin pattern", Config{PlainHTTP: true, AllowedOrigins: []string{"[x"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}

func TestNewRequiresConn(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{PlainHTTP: true}, nil); !errors.Is(err, ErrNilConn) {
		t.Fatalf("got %v", err)
	}
}

func TestDevTLSReusedAndPrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	p1, err := devtls.Ensure(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	ca1, _ := os.ReadFile(p1.CA)
	leaf1, _ := os.ReadFile(p1.Cert)
	p2, err := devtls.Ensure(dir, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(p2.CA)
	leaf2, _ := os.ReadFile(p2.Cert)
	if string(ca1) != string(ca2) || string(leaf1) != string(leaf2) {
		t.Fatal("certificates were regenerated although still valid")
	}
	for _, name := range []string{devtls.CAKey, devtls.KeyFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	// Near the leaf's expiry it is renewed, signed by the same CA.
	p3, err := devtls.Ensure(dir, now.Add(devtls.LeafValidity-devtls.RenewBefore/2))
	if err != nil {
		t.Fatal(err)
	}
	ca3, _ := os.ReadFile(p3.CA)
	leaf3, _ := os.ReadFile(p3.Cert)
	if string(ca3) != string(ca1) || string(leaf3) == string(leaf1) {
		t.Fatal("leaf not renewed near expiry, or CA replaced")
	}
}
