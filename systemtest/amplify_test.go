package systemtest

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/authz"
)

// amplifyDir is the Node project that drives the real aws-amplify client.
const amplifyDir = "amplify"

// amplifyAnswer is one streamed chat answer as compat.mjs reports it.
type amplifyAnswer struct {
	RequestID      string `json:"requestId"`
	ConversationID string `json:"conversationId"`
	Text           string `json:"text"`
	Events         int    `json:"events"`
	Seqs           []int  `json:"seqs"`
	Done           bool   `json:"done"`
	Error          any    `json:"error"`
	Subscription   string `json:"subscription"`
}

type amplifyErrorEntry struct {
	ErrorType string `json:"errorType"`
	Message   string `json:"message"`
	ErrorCode int    `json:"errorCode"`
}

// amplifyResult is the final {"result": ...} line of compat.mjs.
type amplifyResult struct {
	AuthFailure struct {
		Rejected     bool                `json:"rejected"`
		Error        string              `json:"error"`
		ServerFrames []string            `json:"serverFrames"`
		ServerErrors []amplifyErrorEntry `json:"serverErrors"`
	} `json:"authFailure"`
	PostAuthFailure struct {
		Rejected bool   `json:"rejected"`
		Error    string `json:"error"`
	} `json:"postAuthFailure"`
	Connect struct {
		Protocol       string `json:"protocol"`
		URL            string `json:"url"`
		SubscriptionID string `json:"subscriptionId"`
	} `json:"connect"`
	Publish struct {
		Ack *struct {
			ID         string `json:"id"`
			Successful []struct {
				Identifier string `json:"identifier"`
				Index      int    `json:"index"`
			} `json:"successful"`
			Failed []any `json:"failed"`
		} `json:"ack"`
		Answer amplifyAnswer `json:"answer"`
	} `json:"publish"`
	Post struct {
		Failed any           `json:"failed"`
		Answer amplifyAnswer `json:"answer"`
	} `json:"post"`
	Forbidden struct {
		Rejected bool   `json:"rejected"`
		Error    string `json:"error"`
		Frame    *struct {
			Type   string              `json:"type"`
			ID     string              `json:"id"`
			Errors []amplifyErrorEntry `json:"errors"`
		} `json:"frame"`
		SocketOpen bool `json:"socketOpen"`
	} `json:"forbidden"`
	Reconnect struct {
		Close struct {
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		} `json:"close"`
		NewSocketInit bool `json:"newSocketInit"`
		NewSocketAck  bool `json:"newSocketAck"`
		Resubscribed  []struct {
			ID      string `json:"id"`
			Channel string `json:"channel"`
		} `json:"resubscribed"`
		Answer amplifyAnswer `json:"answer"`
	} `json:"reconnect"`
	SubscriptionErrors []string `json:"subscriptionErrors"`
}

// requireAmplifyProject returns the node binary and checks the Node project
// is installed; without them the test skips locally and fails under CI.
func requireAmplifyProject(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node (>= 20) is required for the aws-amplify compatibility test: %v", err)
	}
	if _, err := os.Stat(filepath.Join(amplifyDir, "node_modules", "aws-amplify", "package.json")); err != nil {
		missing("systemtest/amplify/node_modules is missing; run scripts/test-deps.sh (npm ci): %v", err)
	}
	return node
}

// TestAmplifyEventsClient drives the real aws-amplify v6 Events client
// (systemtest/amplify/compat.mjs) against the dev stack over TLS:
// events.connect, channel.subscribe, channel.publish, events.post, an auth
// failure, a forbidden subscription, and a reconnect after the server drops
// the socket, with the resubscription under the same id.
func TestAmplifyEventsClient(t *testing.T) {
	t.Parallel()
	node := requireAmplifyProject(t)
	dev := startDev(t, devConfig(t, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	token := must(dev.Issuer().Mint(authz.DevClaims{Sub: "alice"}))

	admin, err := bus.ConnectInProcess(dev.Server(), "amplify-test-admin", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	cmd := exec.CommandContext(ctx, node, "compat.mjs")
	cmd.Dir = amplifyDir
	cmd.Env = append(os.Environ(),
		"NODE_EXTRA_CA_CERTS="+dev.CAFile(),
		"GH_URL="+dev.EdgeURL(),
		"GH_TOKEN="+token,
		"GH_SUB=alice",
		"GH_OTHER_SUB=bob",
		"GH_TIMEOUT_MS=100000",
	)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		result   *amplifyResult
		dropped  bus.DisconnectResponse
		progress []string
	)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		progress = append(progress, line)
		var msg struct {
			Step   string          `json:"step"`
			Fatal  string          `json:"fatal"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal([]byte(line), &msg); err != nil {
			continue // Amplify may log to stdout
		}
		switch {
		case msg.Fatal != "":
			t.Errorf("compat.mjs failed: %s", msg.Fatal)
		case msg.Step == "await-drop":
			// The admin mechanism: ask every edge to drop alice's sockets.
			dropped, err = bus.Request[bus.DisconnectResponse](ctx, admin, bus.NewSubjects("").EdgeDisconnect(),
				bus.DisconnectRequest{Sub: "alice", Reason: "compatibility test reconnect"}, nil)
			if err != nil {
				t.Errorf("disconnect request: %v", err)
			}
		case msg.Result != nil:
			result = new(amplifyResult)
			if err := json.Unmarshal(msg.Result, result); err != nil {
				t.Fatalf("bad result line: %v", err)
			}
		}
	}
	waitErr := cmd.Wait()
	if t.Failed() || result == nil || waitErr != nil {
		t.Fatalf("compat.mjs: exit %v\nstdout:\n%s\nstderr:\n%s", waitErr, strings.Join(progress, "\n"), stderr.String())
	}
	for _, line := range progress {
		t.Log(line)
	}
	r := result

	// Auth failure: connection_error with UnauthorizedException (401), not
	// retried by Amplify; HTTP publish refused too.
	if !r.AuthFailure.Rejected || !strings.Contains(r.AuthFailure.Error, "UnauthorizedException") {
		t.Errorf("bad token over WebSocket: %+v", r.AuthFailure)
	}
	if len(r.AuthFailure.ServerErrors) == 0 || r.AuthFailure.ServerErrors[0].ErrorType != "UnauthorizedException" || r.AuthFailure.ServerErrors[0].ErrorCode != 401 {
		t.Errorf("bad token: server errors %+v, want UnauthorizedException/401", r.AuthFailure.ServerErrors)
	}
	if !r.PostAuthFailure.Rejected || !strings.HasPrefix(r.PostAuthFailure.Error, "UnauthorizedException") {
		t.Errorf("bad token over HTTP was accepted: %+v", r.PostAuthFailure)
	}

	// Connect and subscribe.
	if r.Connect.Protocol != "aws-appsync-event-ws" {
		t.Errorf("negotiated subprotocol %q", r.Connect.Protocol)
	}
	if !strings.HasSuffix(r.Connect.URL, "/event/realtime") || !strings.HasPrefix(r.Connect.URL, "wss://") {
		t.Errorf("Amplify connected to %q", r.Connect.URL)
	}
	subID := r.Connect.SubscriptionID
	if subID == "" {
		t.Fatal("no subscription id")
	}

	// channel.publish and events.post: each answered on the subscription.
	checkAmplifyAnswer(t, "channel.publish", r.Publish.Answer, "hello from amplify", subID)
	if a := r.Publish.Ack; a == nil || len(a.Successful) != 1 || len(a.Failed) != 0 || a.Successful[0].Identifier != r.Publish.Answer.RequestID {
		t.Errorf("publish_success %+v does not name request %s", a, r.Publish.Answer.RequestID)
	}
	checkAmplifyAnswer(t, "events.post", r.Post.Answer, "posted over http", subID)
	if r.Post.Failed != nil {
		t.Errorf("events.post reported failures: %v", r.Post.Failed)
	}

	// Someone else's channel: subscribe_error, the socket stays.
	if !r.Forbidden.Rejected || r.Forbidden.Frame == nil || len(r.Forbidden.Frame.Errors) == 0 ||
		r.Forbidden.Frame.Errors[0].ErrorType != "UnauthorizedException" || !r.Forbidden.SocketOpen {
		t.Errorf("forbidden subscribe: %+v", r.Forbidden)
	}

	// Reconnect: the server closed the socket (1001, our reason), Amplify
	// reconnected, resubscribed with the same id, and answers flow again.
	if dropped.Closed < 1 {
		t.Errorf("the edge closed %d sockets for alice, want >= 1", dropped.Closed)
	}
	if r.Reconnect.Close.Code != 1001 || r.Reconnect.Close.Reason != "compatibility test reconnect" {
		t.Errorf("close = %+v, want 1001 with the operator's reason", r.Reconnect.Close)
	}
	if !r.Reconnect.NewSocketInit || !r.Reconnect.NewSocketAck {
		t.Errorf("no new handshake after the drop: %+v", r.Reconnect)
	}
	same := false
	for _, s := range r.Reconnect.Resubscribed {
		if s.ID == subID && s.Channel == "/Outbound-Messages/alice" {
			same = true
		}
	}
	if !same {
		t.Errorf("resubscriptions %+v do not reuse id %s", r.Reconnect.Resubscribed, subID)
	}
	checkAmplifyAnswer(t, "publish after reconnect", r.Reconnect.Answer, "after the reconnect", subID)
}

func checkAmplifyAnswer(t *testing.T, what string, a amplifyAnswer, want, subID string) {
	t.Helper()
	if !a.Done || a.Error != nil {
		t.Errorf("%s: answer not complete: %+v", what, a)
		return
	}
	if a.Text != want {
		t.Errorf("%s: answer text %q, want %q", what, a.Text, want)
	}
	if a.Subscription != subID {
		t.Errorf("%s: delivered on subscription %q, want %q", what, a.Subscription, subID)
	}
	if a.Events < 4 {
		t.Errorf("%s: only %d events", what, a.Events)
	}
	for i, s := range a.Seqs {
		if s != i {
			t.Errorf("%s: event %d has seq %d", what, i, s)
			break
		}
	}
}
