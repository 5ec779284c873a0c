package protocol

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

func TestParseFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Frame
		wantErr error
	}{
		{"init", `{"type":"connection_init"}`, Frame{Type: TypeConnectionInit}, nil},
		{"amplify subscribe", `{"id":"abc-1","channel":"default/x","authorization":{"Authorization":"tok","host":"h","x-amz-user-agent":"aws-amplify/6","n":1},"payload":{"channel":"default/x"},"type":"subscribe"}`,
			Frame{Type: TypeSubscribe, ID: "abc-1", Channel: "default/x", Authorization: map[string]string{"Authorization": "tok", "host": "h", "x-amz-user-agent": "aws-amplify/6"}}, nil},
		{"publish", `{"type":"publish","id":"p","channel":"/a/b","events":["{}","1"]}`,
			Frame{Type: TypePublish, ID: "p", Channel: "/a/b", Events: []json.RawMessage{json.RawMessage(`"{}"`), json.RawMessage(`"1"`)}, HasEvents: true}, nil},
		{"null fields", `{"type":"subscribe","id":null,"events":null,"authorization":null}`, Frame{Type: TypeSubscribe}, nil},
		{"not an object", `[1]`, Frame{}, ErrMalformed},
		{"truncated", `{"type":"ka"`, Frame{}, ErrMalformed},
		{"no type", `{"id":"x"}`, Frame{}, ErrMissingType},
		{"empty type", `{"type":""}`, Frame{}, ErrMissingType},
		{"numeric id", `{"type":"subscribe","id":5}`, Frame{}, ErrMalformed},
		{"events object", `{"type":"publish","events":{}}`, Frame{}, ErrMalformed},
		{"authorization string", `{"type":"publish","authorization":"x"}`, Frame{}, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseFrame([]byte(tc.in))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(tc.want)
			if string(gb) != string(wb) {
				t.Fatalf("got %s\nwant %s", gb, wb)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"a": true, "A-z_0+9": true, "": false, "a b": false, "a/b": false, "é": false,
		string(make([]byte, 129)): false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v", id, got)
		}
	}
	long := make([]byte, MaxIDLen)
	for i := range long {
		long[i] = 'x'
	}
	if !ValidID(string(long)) {
		t.Error("a 128-character id must be valid")
	}
}

func TestEncodedFrames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want string
	}{
		{string(ConnectionAck(300000)), `{"type":"connection_ack","connectionTimeoutMs":300000}`},
		{string(Success(TypeSubscribeSuccess, "s1")), `{"type":"subscribe_success","id":"s1"}`},
		{string(Failure(TypeSubscribeError, "s1", Unauthorized("no"))), `{"type":"subscribe_error","id":"s1","errors":[{"errorType":"UnauthorizedException","message":"no"}]}`},
		{string(Failure(TypeError, "", BadRequest("x"))), `{"type":"error","errors":[{"errorType":"BadRequestException","message":"x"}]}`},
		{string(PublishSuccess("p", PublishResult{})), `{"type":"publish_success","id":"p","successful":[],"failed":[]}`},
		{string(AppendData(nil, "s1", AppendJSONString(nil, []byte(`{"a":"b"}`)))), `{"type":"data","id":"s1","event":"{\"a\":\"b\"}"}`},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
	}
}

func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"connection_init"}`,
		`{"type":"subscribe","id":"a","channel":"/x/*","authorization":{"Authorization":"t"}}`,
		`{"type":"publish","id":"p","channel":"/a","events":["{}"],"payload":{"x":[1,2]}}`,
		`{"type":"unsubscribe","id":null}`,
		`{"type":1}`, `null`, `{}`, `[`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ParseFrame(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrMissingType) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if fr.Type == "" {
			t.Fatal("parsed frame without type")
		}
		if !fr.HasEvents && fr.Events != nil {
			t.Fatal("events without HasEvents")
		}
		if len(fr.Authorization) > maxAuthorizationEntries {
			t.Fatal("authorization not bounded")
		}
		for _, ev := range fr.Events {
			if !json.Valid(ev) {
				t.Fatalf("event %q is not valid JSON", ev)
			}
		}
	})
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", `{"a":1}`, "line\nbreak", "\u2028\u2029", "\xff\xfe", `"\`, "\x00\x1f<>&"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		enc := AppendJSONString(nil, data)
		var back string
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("%q encoded to invalid JSON %q: %v", data, enc, err)
		}
		if utf8.Valid(data) && back != string(data) {
			t.Fatalf("round trip: %q -> %q -> %q", data, enc, back)
		}
		// Agrees with encoding/json (which also maps invalid UTF-8 to U+FFFD).
		var want string
		wb, _ := json.Marshal(string(data))
		_ = json.Unmarshal(wb, &want)
		if back != want {
			t.Fatalf("decoded %q, encoding/json gives %q", back, want)
		}
	})
}
