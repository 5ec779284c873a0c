// Package provider is the seam between chat and model providers: a
// [Provider] streams an answer as text chunks and reports usage. Echo is
// the only provider for now; Bedrock ConverseStream and OpenAI-compatible
// SSE providers plug in behind the same interface.
package provider
