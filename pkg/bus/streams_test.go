package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestParseStorage(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]jetstream.StorageType{"file": jetstream.FileStorage, "memory": jetstream.MemoryStorage} {
		if got, err := bus.ParseStorage(name); err != nil || got != want {
			t.Errorf("ParseStorage(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	for _, name := range []string{"", "disk", "File", "mem"} {
		if _, err := bus.ParseStorage(name); err == nil {
			t.Errorf("ParseStorage(%q) accepted", name)
		}
	}
}

// streamsEnv is an embedded server with a JetStream client for one test.
func streamsEnv(t *testing.T) (context.Context, jetstream.JetStream) {
	t.Helper()
	nc := natstest.Connect(t, natstest.Start(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx, js
}

// storedRequest publishes one request to INBOUND, so that a test can see
// whether the stream was kept.
func storedRequest(t *testing.T, ctx context.Context, js jetstream.JetStream, s bus.Subjects) {
	t.Helper()
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: s.Inbound("alice"), Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
}

// streamState returns the storage and message count of the named stream.
func streamState(t *testing.T, ctx context.Context, js jetstream.JetStream, name string) (jetstream.StorageType, uint64) {
	t.Helper()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info := st.CachedInfo()
	return info.Config.Storage, info.State.Msgs
}

func TestEnsureStreamsInboundStorage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts bus.StreamOptions
	}{
		{"default file", bus.StreamOptions{}},
		{"memory", bus.StreamOptions{InboundStorage: jetstream.MemoryStorage}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, js := streamsEnv(t)
			s := bus.NewSubjects("")
			if err := bus.EnsureStreams(ctx, js, s, tc.opts); err != nil {
				t.Fatal(err)
			}
			storedRequest(t, ctx, js, s)
			// Again, as every replica does at start-up: nothing changes.
			if err := bus.EnsureStreams(ctx, js, s, tc.opts); err != nil {
				t.Fatalf("second declaration: %v", err)
			}
			if st, n := streamState(t, ctx, js, "INBOUND"); st != tc.opts.InboundStorage || n != 1 {
				t.Errorf("INBOUND: storage %v with %d messages, want %v with 1", st, n, tc.opts.InboundStorage)
			}
			if st, _ := streamState(t, ctx, js, "USAGE"); st != jetstream.FileStorage {
				t.Errorf("USAGE: storage %v, want file", st)
			}
		})
	}
}

func TestEnsureStreamsInboundStorageMismatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		have, want jetstream.StorageType
		prefix     string
		text       string
	}{
		{"file to memory", jetstream.FileStorage, jetstream.MemoryStorage, "",
			"bus: declare stream INBOUND: stream INBOUND is stored in file but nats.inbound_storage is memory: " +
				"the storage of an existing stream cannot change; let chat workers drain it, delete it " +
				"(nats stream rm INBOUND) and restart, or set nats.inbound_storage back to file"},
		{"memory to file", jetstream.MemoryStorage, jetstream.FileStorage, "acme",
			"bus: declare stream ACME_INBOUND: stream ACME_INBOUND is stored in memory but nats.inbound_storage is file: " +
				"the storage of an existing stream cannot change; let chat workers drain it, delete it " +
				"(nats stream rm ACME_INBOUND) and restart, or set nats.inbound_storage back to memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, js := streamsEnv(t)
			s := bus.NewSubjects(tc.prefix)
			if err := bus.EnsureStreams(ctx, js, s, bus.StreamOptions{InboundStorage: tc.have}); err != nil {
				t.Fatal(err)
			}
			storedRequest(t, ctx, js, s)

			err := bus.EnsureStreams(ctx, js, s, bus.StreamOptions{InboundStorage: tc.want})
			var se *bus.InboundStorageError
			if !errors.As(err, &se) || se.Stream != s.StreamInbound() || se.Have != tc.have || se.Want != tc.want {
				t.Fatalf("got %v (%+v), want an InboundStorageError from %v to %v", err, se, tc.have, tc.want)
			}
			if err.Error() != tc.text {
				t.Errorf("error text:\n got %s\nwant %s", err, tc.text)
			}
			// The stream and the request it holds are left alone.
			if st, n := streamState(t, ctx, js, s.StreamInbound()); st != tc.have || n != 1 {
				t.Errorf("INBOUND after the refusal: storage %v with %d messages, want %v with 1", st, n, tc.have)
			}
		})
	}
}

// TestRequestLimit derives the largest chat request from the server's
// max_payload, and refuses a configured one the server cannot carry,
// naming the settings to change.
func TestRequestLimit(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	for _, tc := range []struct {
		maxPayload int64
		configured int
		want       int
		err        string
	}{
		{mib, 0, mib - bus.RequestHeaderHeadroom, ""},
		{8 * mib, 0, 8*mib - bus.RequestHeaderHeadroom, ""},
		{1 << 30, 0, bus.MaxRequestBytesCeiling, ""},
		{8 * mib, 2 * mib, 2 * mib, ""},
		{mib, 2 * mib, 0, "raise max_payload in the server's configuration to at least 2113536"},
		{64 << 10, 0, 0, "too small for chat requests"},
		{8 * mib, -1, 0, "nats.max_request_bytes is -1"},
		{8 * mib, 1000, 0, "it must be 0 (derived from the server's max_payload) or 65536 to 67108864"},
		{1 << 30, 128 * mib, 0, "it must be 0"},
	} {
		got, err := bus.RequestLimit(tc.maxPayload, tc.configured)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("RequestLimit(%d, %d) = %d, %v; want %d, %q", tc.maxPayload, tc.configured, got, err, tc.want, tc.err)
		}
	}
}

// TestInboundMaxMsgSize declares the streams on servers with a stock
// max_payload (1 MiB) and the embedded default (8 MiB): INBOUND's largest
// message follows the server, a configured limit is used as it is, and one
// the server cannot carry fails the declaration.
func TestInboundMaxMsgSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		maxPayload int32
		configured int
		want       int32
		err        string
	}{
		{"stock server", 1 << 20, 0, 1<<20 - bus.RequestHeaderHeadroom, ""},
		{"embedded default", 0, 0, bus.EmbeddedMaxPayload - bus.RequestHeaderHeadroom, ""},
		{"configured", 0, 2 << 20, 2 << 20, ""},
		{"too big for the server", 1 << 20, 2 << 20, 0, "nats.max_request_bytes is 2097152"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Dir: t.TempDir(), Port: -1, MaxPayload: tc.maxPayload})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
			nc, err := nats.Connect(srv.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			subj := bus.NewSubjects("t")
			err = bus.EnsureStreams(ctx, js, subj, bus.StreamOptions{MaxRequestBytes: tc.configured})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("EnsureStreams: %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st, err := js.Stream(ctx, subj.StreamInbound())
			if err != nil {
				t.Fatal(err)
			}
			if got := st.CachedInfo().Config.MaxMsgSize; got != tc.want {
				t.Fatalf("INBOUND MaxMsgSize %d, want %d", got, tc.want)
			}
		})
	}
}
