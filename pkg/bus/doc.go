// Package bus is the contract between Gatehouse services: NATS subjects,
// header names, the message shapes carried on each subject, connection
// options, the embedded NATS server used by `gatehouse dev` and tests, and the
// JetStream streams every deployment declares.
//
// Services never import each other; everything they exchange is defined
// here.
//
// Trace context crosses the bus in lowercase traceparent/tracestate
// headers: [Request] injects it into every request, [InjectTrace] into a
// published message, and [TraceHandler] extracts it in micro handlers and
// records their server span.
package bus
