// Package provider is the seam between chat and model providers: a
// [Provider] streams an answer as [Delta] pieces (text, and the start and
// input of each tool call) and reports usage.
//
// Three providers exist: [Echo] (answers with the last user message),
// [OpenAI] (any OpenAI-compatible server over server-sent events, with
// stream_options.include_usage always requested) and [Bedrock] (Amazon
// Bedrock ConverseStream through aws-sdk-go-v2). Failures are returned as
// [*Error] with a [Kind] that tells chat whether to retry.
package provider
