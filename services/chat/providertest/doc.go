// Package providertest holds faithful fake model upstreams for tests and
// benchmarks: [Bedrock] speaks the ConverseStream wire protocol (AWS event
// stream framing built with aws-sdk-go-v2's aws/protocol/eventstream,
// JSON event payloads, modeled exceptions and REST-JSON HTTP errors), and
// [OpenAI] speaks the chat completions server-sent events protocol.
//
// Each fake answers requests from a queue of [Reply] scripts (the
// default reply when the queue is empty), records every request it got,
// and counts requests whose client went away before the reply finished, so
// tests can prove cancellation reaches the upstream.
package providertest
