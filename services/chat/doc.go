// Package chat is Gatehouse's chat worker: it consumes chat requests from
// the INBOUND stream, asks meter for quota, answers from the cache or a
// model provider, and streams the answer as Bedrock ConverseStream-shaped
// events ([bus.Event]) to the caller's outbound channel, or to the reply
// subject of an HTTP API request.
//
// # Consumption and the delivery rule
//
// Every replica pulls from the one durable consumer [bus.ConsumerChat] on
// [bus.Subjects.StreamInbound] (explicit acknowledgement, MaxAckPending and
// pull batch sized to [Config.Concurrency]) and processes at most
// Concurrency requests at once.
//
// The delivery rule is at most once, and JetStream enforces it: the
// consumer has MaxDeliver 1 ([MaxDeliver]), so it never delivers a request
// twice, whatever becomes of the acknowledgement. A message is therefore
// acknowledged asynchronously (a plain Ack, no round trip before the model
// is called) as soon as it is decoded and validated. That is safe while
// JetStream still counts the message as pending, which is certain when it
// was stored less than half of [Config.AckWait] ago; a message that reaches
// its worker later (it waited in the pull buffer or in a backlog) is
// claimed instead, by deleting it from INBOUND synchronously, and is not
// run if it is already gone (see below). Consumers declared by earlier
// versions with MaxDeliver 3 are updated in place when a replica starts.
//
// A request whose worker dies before acknowledging it (or whose
// acknowledgement is lost) is not run again: when AckWait has passed,
// JetStream gives it up and publishes a max-deliveries advisory
// ($JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<INBOUND>.chat). Every replica
// listens in queue group [bus.QueueChat]; the one that gets it reads the
// request, deletes it from INBOUND and answers it with one internal_error
// event (the client may ask again); nothing was reserved or recorded. (An
// acknowledgement lost while its worker lives on, which takes a broken
// connection whose reconnect buffer does not resend it, gets the same
// treatment: the caller then sees this error after, or instead of the
// rest of, its answer; the request still runs once.) If
// no replica runs at that moment the advisory is lost: the request stays in
// INBOUND until [bus.InboundMaxAge], the HTTP API client's edge times out
// after OpenAIEventTimeout and a WebSocket client gets no answer. A
// request whose worker dies after acknowledging it, mid-stream, is likewise
// never re-run: the HTTP API client sees the stream end with an error (its
// edge times out after OpenAIEventTimeout), the WebSocket client sees the
// answer stop, and the reservation expires in meter. The worker sends no
// progress heartbeats: once acknowledged, a long stream holds no JetStream
// state at all.
//
// The age test compares this host's clock with the message's JetStream
// timestamp, so it assumes the clocks of chat and NATS hosts differ by
// less than half of AckWait (15 s by default). If a late claim's delete
// fails for another reason the request is not run and is answered with
// internal_error at once (the advisory may then answer it a second time).
// When Run's context ends, requests already delivered to the replica's
// pull buffer are still run (the iterator is drained); those not started
// when [Config.DrainTimeout] ends are answered as undelivered by another
// replica after AckWait.
//
// A message without a valid Gh-Identity or
// Gh-Request-Id header, with a bad Gh-Reply-To, or whose body cannot be
// decoded is terminated (Term) and logged; a client that can be addressed
// also gets a validation_error event. A request that fails validation is
// acknowledged and answered with one error event.
//
// # One request
//
//  1. Headers: identity (who asks), request id, optional reply-to, which
//     must be under Prefix.reply.; without it events go to
//     [bus.Subjects.Outbound] of the caller's channel id.
//  2. A request carrying only "stop" is relayed as a core NATS message on
//     [bus.Subjects.Cancel] with the caller's identity header.
//  3. Validation (messages, roles, text, model id or alias, maxTokens and
//     the limits of [Config]); failure is one error event of type
//     validation_error or model_not_found whose message names the field.
//  4. Model access: authz is asked on [bus.Subjects.AuthzCheck] with a
//     [bus.ModelCheckRequest] (op [bus.OpInvoke], the canonical model id)
//     whether the caller may invoke the model (plan, groups, API key
//     scope). A denial is one forbidden event ([bus.ErrTypeForbidden])
//     naming the model and the reason, with no reservation and no usage
//     record; if authz does not answer within [Config.AuthzTimeout] the
//     request fails closed with internal_error. Allow decisions are
//     cached per replica for [DecisionCacheTTL] (at most
//     [MaxCachedDecisions]), keyed by issuer, sub, API key, plan, groups,
//     tenant and model; a [bus.Revocation] on [bus.Subjects.AuthzRevoked]
//     drops the matching ones at once. Fallback models named by the
//     catalog are the operator's routing and are not checked separately.
//  5. Cache lookup (scope "user:"+identity.Subject()); any failure is a miss.
//     Each replica keeps an index of the cache bucket's keys (package
//     pkg/keyindex: a metadata-only watch of the bucket plus its own
//     stores, at most [Config.CacheIndexMaxKeys]); a key the index has
//     never seen is a miss without asking the cache service, one bus round
//     trip less. A key it holds is always asked for, so a hit is never
//     wrong; until the index is built, and after its watch fails, every
//     lookup is asked for.
//  6. Quota reservation with meter; a refusal is a quota_exceeded event, and
//     if meter does not answer the request fails closed with internal_error.
//  7. The answer: messageStart, one contentBlockDelta per chunk,
//     contentBlockStop, messageStop (end_turn, max_tokens or cancelled),
//     then settlement and the final metadata event with usage and the
//     caller's quota windows. Every event carries conversationId, requestId
//     and a per-request seq from 0. A provider failure ends the answer
//     with an upstream_error or upstream_throttled event (a guardrail
//     intervention with guardrail_intervened) instead of the stop and
//     metadata events.
//  8. A [bus.UsageRecord] on [bus.Subjects.Usage] with Nats-Msg-Id set to
//     the request id (ok, cancelled or error; cached answers too), then,
//     for a complete (end_turn) answer not served from the cache, a cache
//     store.
//
// # INBOUND keep markers
//
// With INBOUND on file storage (nats.inbound_storage: file) every replica
// stores a keep marker on [bus.Subjects.InboundKeep] at the start of each
// [bus.InboundKeepInterval]; its message id is the interval's start, so
// there is one per interval. The workers' consumer filters on
// [bus.Subjects.InboundAll] and never sees them; they expire with
// [bus.InboundMaxAge]. They keep the file store's last block from becoming
// empty: JetStream deletes an emptied last block file and creates a new one,
// which on a quiet work queue happened on every acknowledgement.
//
// # Cancellation
//
// Every replica subscribes to [bus.Subjects.CancelAll]. A cancel stops the
// generation when the canceller's identity.Subject() equals the
// requester's; the answer then ends with messageStop "cancelled" and the
// partial usage, and the usage record has status cancelled. A cancel that
// arrives before its request starts is remembered for [EarlyCancelTTL].
//
// # Models and providers
//
// Models come from the catalog in [Config.Models]: id, aliases, provider,
// upstream model id, default and maximum output tokens, context window,
// [Price] per million input, output and cached input tokens, a Bedrock
// [Guardrail] and ordered Fallbacks. Each names a provider: the built-in
// echo (answers with the last user message word by word, counting words
// as tokens), or one of [Config.Providers]: Amazon Bedrock ConverseStream
// (aws-sdk-go-v2, the standard credential chain and region; system
// prompt, inference parameters and guardrail passed through; usage from
// the metadata event) or any OpenAI-compatible server over server-sent
// events (stream_options.include_usage always requested). Where a
// provider reports no usage, tokens are estimated (about four bytes a
// token) and the usage is marked estimated.
//
// The reservation carries MaxCostMicroUSD, the dearest model of the
// fallback chain at full output; settlement and the usage record carry the
// actual cost of the model that answered (a cached answer costs nothing,
// and so does a request every attempt of which failed before any output).
// Answers from a fallback are recorded under the fallback's model id.
//
// # Retries and fallbacks
//
// A call that is throttled (HTTP 429, ThrottlingException, a rate-limit
// error event), failing (5xx, model not ready, broken connection) or
// without a first token within [Config.FirstTokenTimeout] is retried up to
// [Config.RetryAttempts] times with doubling backoff from
// [Config.RetryBackoff] (honouring Retry-After, capped at
// [MaxRetryBackoff]), then the next fallback model is tried the same way.
// Once a token reached the client nothing is retried: a failure then ends
// the answer with an upstream_throttled or upstream_error event, and the
// tokens produced are metered. Other upstream refusals (4xx) are not
// retried. Each provider allows at most [ProviderConfig.MaxConcurrent]
// calls in flight per replica; further requests wait for a slot.
//
// A fallback that cannot serve the request is skipped: one the catalog
// says reads no images or calls no tools ([Model.NoVision],
// [Model.NoTools]) when the request holds images or tools, one whose
// provider cannot produce the requested output format
// ([provider.SupportsOutput]) or read images from URLs
// ([provider.FetchesImages]), or one that can take the requested reasoning
// effort neither by a mapping of its own nor as it is
// ([provider.TakesReasoningEffort]), or one whose provider cannot take the
// request's logit_bias or verbosity ([provider.TakesOpenAIParam]).
//
// # OpenAI parameters
//
// A request's openaiParams ([bus.OpenAIParams]) go to OpenAI-compatible
// servers as they are. logitBias and verbosity change the answer: a model
// whose provider has no such parameter (Bedrock) is refused a request
// setting them with a validation error naming the model and the
// parameter; echo ignores them; the cache key includes them. The hints
// user, safetyIdentifier, promptCacheKey and serviceTier are never
// refused: Bedrock and echo do not get them, and they are not part of the
// cache key. A model's RequestFields may set none of them
// ([OpenAIReservedFields]).
//
// # Reasoning effort
//
// A request's reasoningEffort (OpenAI's reasoning_effort values,
// [bus.ReasoningEfforts]) is sent as the request fields the model maps it
// to ([Model.ReasoningEffort], merged over its RequestFields) when it maps
// it; otherwise OpenAI-compatible servers get it as reasoning_effort, echo
// ignores it, and Bedrock, which has no such parameter, takes only none
// (nothing to send): any other effort for a Bedrock model without a
// mapping is a validation error naming the model. The cache key includes
// the effort.
//
// # Tools, images and structured output
//
// Requests carry them in Converse's shape: toolConfig, toolUse and
// toolResult blocks, image blocks, outputConfig (see [bus.ChatRequest]).
// [Service] validates them before anything is reserved: tool names and
// JSON Schemas, that every toolUse of an assistant message is answered by a
// toolResult in the next message and every toolResult answers one, images
// in user messages only whose bytes are of their stated format (at most
// [MaxImages]), that the model reads images and calls tools if the
// request holds them (a model with [Model.NoVision] or [Model.NoTools] is
// refused them with a validation error naming it, rather than sent a
// request its server would refuse or silently answer without them), and
// that the model's provider can produce the output format and read image
// URLs. A model's tool call streams as a
// contentBlockStart (toolUseId, name) and contentBlockDelta.delta.toolUse
// input pieces, ends with a contentBlockStop per block and messageStop
// tool_use, and is never cached; the cache key includes tools, tool blocks,
// the output format and a hash of each image.
//
// # Prompt cache points
//
// Converse cachePoint blocks in the system blocks and messages, and
// cachePoint entries of toolConfig.tools, mark prompt prefixes Claude and
// Nova on Bedrock may cache. [Service] checks that each has the type
// "default" and sets nothing else, that no system and no message is made of
// cache points only, and that there are at most [MaxCachePoints]; they count
// no bytes and are not tools. Bedrock gets them where they are;
// OpenAI-compatible servers, which cache prefixes by themselves, and echo do
// not. They are not part of the cache key. Tokens Bedrock reads from and
// writes to its prompt cache are input tokens, priced at
// [Price.CachedInputPerMillion] and [Price.CacheWriteInputPerMillion]; the
// reservation of a request with cache points covers its whole input written
// to the cache.
//
// # Model catalog endpoint
//
// Every replica answers [bus.Subjects.ChatModels] (micro, queue group
// [bus.QueueChat]) with the catalog, each model's capabilities included
// ([bus.ModelCapabilities]); the edge's GET /v1/models reads it.
//
// # Shutdown
//
// When Run's context ends it stops pulling, lets running requests finish
// for up to [Config.DrainTimeout], then cancels them (they are still
// settled and recorded) and returns.
package chat
