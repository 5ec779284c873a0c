package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	published := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		data    string
		mention string // "" means valid
	}{
		{"full", `{"requestId":"r1","sub":"a","inputTokens":1,"outputTokens":2,"totalTokens":3,"startedAt":"2026-01-01T00:00:00+02:00","finishedAt":"2026-01-01T00:00:01+02:00"}`, ""},
		{"times defaulted", `{"requestId":"r1"}`, ""},
		{"not json", `nope`, "invalid character"},
		{"wrong type", `{"requestId":5}`, "requestId"},
		{"no request id", `{"sub":"a"}`, "requestId is missing"},
		{"long request id", `{"requestId":"` + strings.Repeat("x", MaxRequestIDLen+1) + `"}`, "longer"},
		{"negative input", `{"requestId":"r","inputTokens":-1}`, "inputTokens"},
		{"negative output", `{"requestId":"r","outputTokens":-1}`, "outputTokens"},
		{"negative total", `{"requestId":"r","totalTokens":-1}`, "totalTokens"},
		{"nul byte", `{"requestId":"r","modelId":"a\u0000"}`, "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Decode([]byte(tt.data), published)
			if tt.mention != "" {
				if !errors.Is(err, ErrPoison) || !strings.Contains(err.Error(), tt.mention) {
					t.Fatalf("Decode = %v, want ErrPoison mentioning %q", err, tt.mention)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if r.FinishedAt.Location() != time.UTC || r.StartedAt.Location() != time.UTC || r.StartedAt.After(r.FinishedAt) {
				t.Errorf("times not normalised: %v .. %v", r.StartedAt, r.FinishedAt)
			}
		})
	}
	r, _ := Decode([]byte(`{"requestId":"r1"}`), published)
	if !r.FinishedAt.Equal(published) || !r.StartedAt.Equal(published) {
		t.Errorf("missing times = %v .. %v, want the publish time", r.StartedAt, r.FinishedAt)
	}
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// is storable: a request id, no negative counts, UTC times.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"requestId":"r1","inputTokens":1,"finishedAt":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"requestId":"","sub":"\u0000"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data, time.Unix(0, 0))
		if err != nil {
			if !errors.Is(err, ErrPoison) {
				t.Fatalf("error not ErrPoison: %v", err)
			}
			return
		}
		if r.RequestID == "" || r.InputTokens < 0 || r.OutputTokens < 0 || r.TotalTokens < 0 ||
			r.FinishedAt.Location() != time.UTC || strings.ContainsRune(r.RequestID+r.Sub+r.ModelID, 0) {
			t.Fatalf("accepted unstorable record %+v", r)
		}
	})
}
