package edge

import (
	"io"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go/micro"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// TestOpenAIModelCapabilities: GET /v1/models and /v1/models/{id} carry
// each model's capabilities from chat's catalog as an extra field, and
// leave it out for a model chat says nothing about (a chat that predates
// it).
func TestOpenAIModelCapabilities(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	svc, err := micro.AddService(e.nc, micro.Config{Name: "chat-models", Version: "0.0.1", QueueGroup: bus.QueueChat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	err = svc.AddEndpoint("models", micro.HandlerFunc(func(r micro.Request) {
		bus.Respond(r, bus.ModelsResponse{Models: []bus.ModelInfo{
			{ID: "llama", Aliases: []string{"local"}, Provider: "vllm", Capabilities: &bus.ModelCapabilities{Tools: true}},
			{ID: "gpt", Provider: "openai", Capabilities: &bus.ModelCapabilities{Vision: true, Tools: true}},
			{ID: "old", Provider: "echo"},
		}})
	}), micro.WithEndpointSubject(bus.NewSubjects("").ChatModels()))
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.svc.URL()+path, nil)
		req.Header.Set("Authorization", "alice")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	const want = `{"object":"list","data":[` +
		`{"id":"llama","object":"model","created":0,"owned_by":"vllm","capabilities":{"vision":false,"tools":true}},` +
		`{"id":"gpt","object":"model","created":0,"owned_by":"openai","capabilities":{"vision":true,"tools":true}},` +
		`{"id":"old","object":"model","created":0,"owned_by":"echo"}]}` + "\n"
	if got := get(PathModels); got != want {
		t.Fatalf("GET %s\n got %s\nwant %s", PathModels, got, want)
	}
	if got, want := get(PathModels+"/local"), `{"id":"llama","object":"model","created":0,"owned_by":"vllm","capabilities":{"vision":false,"tools":true}}`+"\n"; got != want {
		t.Fatalf("GET by alias\n got %s\nwant %s", got, want)
	}
}
