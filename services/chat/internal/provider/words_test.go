package provider

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

func TestSplitWords(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"":                  nil,
		"hello":             {"hello"},
		"hello there":       {"hello", " there"},
		"  lead":            {"  lead"},
		"trail  ":           {"trail  "},
		"a  b\n c":          {"a", "  b", "\n c"},
		"   ":               {"   "},
		"héllo wörld ünï":   {"héllo", " wörld", " ünï"},
		" x y ":             {" x", " y "},
		"one\ttwo\u00a0три": {"one", "\ttwo", "\u00a0три"},
	}
	for in, want := range cases {
		got := SplitWords(in)
		if !slices.Equal(got, want) {
			t.Errorf("SplitWords(%q) = %q, want %q", in, got, want)
		}
		if strings.Join(got, "") != in {
			t.Errorf("SplitWords(%q) does not concatenate back", in)
		}
		if w := CountWords(in); in != "   " && in != "" && w != len(got) {
			t.Errorf("CountWords(%q) = %d, chunks %d", in, w, len(got))
		}
	}
}

func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{"", "a b", " a  b ", "\u00a0x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SplitWords(s)
		if strings.Join(got, "") != s {
			t.Fatalf("chunks %q do not concatenate to %q", got, s)
		}
		if n := CountWords(s); n > 0 && n != len(got) {
			t.Fatalf("%d words but %d chunks", n, len(got))
		}
	})
}

func TestEchoStream(t *testing.T) {
	t.Parallel()
	call := &Call{
		System: []bus.ContentBlock{{Text: "be brief"}},
		Messages: []bus.Message{
			{Role: "user", Content: []bus.ContentBlock{{Text: "first question"}}},
			{Role: "assistant", Content: []bus.ContentBlock{{Text: "an answer"}}},
			{Role: "user", Content: []bus.ContentBlock{{Text: "one two"}, {Text: "three"}}},
		},
		MaxTokens: 10,
	}
	e := &Echo{}
	var got []string
	res, err := e.Stream(context.Background(), call, func(d Delta) error { got = append(got, d.Text); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "") != "one two\nthree" || res.StopReason != StopEndTurn {
		t.Fatalf("got %q, %+v", got, res)
	}
	if res.Usage.InputTokens != 9 || res.Usage.OutputTokens != 3 || res.Usage.TotalTokens != 12 {
		t.Fatalf("usage %+v", res.Usage)
	}

	call.MaxTokens = 2
	got = nil
	res, err = e.Stream(context.Background(), call, func(d Delta) error { got = append(got, d.Text); return nil })
	if err != nil || res.StopReason != StopMaxTokens || len(got) != 2 || res.Usage.OutputTokens != 2 {
		t.Fatalf("max tokens: %q %+v %v", got, res, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	call.MaxTokens = 10
	got = nil
	res, err = e.Stream(ctx, call, func(d Delta) error { got = append(got, d.Text); cancel(); return nil })
	if !errors.Is(err, context.Canceled) || len(got) != 1 || res.Usage.OutputTokens != 1 {
		t.Fatalf("cancel: %q %+v %v", got, res, err)
	}
}
