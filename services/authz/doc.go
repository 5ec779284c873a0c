// Package authz is Gatehouse's authorization service: it turns credentials
// into a verified [identity.Identity] and decides whether a caller may
// publish or subscribe to a channel.
//
// [Service] answers two request/reply endpoints over NATS (nats.go micro,
// queue group [bus.QueueAuthz]):
//
//   - Subjects.AuthzVerify: [bus.VerifyRequest] -> [bus.VerifyResponse]. A
//     refused credential is a 401 service error whose description says
//     exactly why ("token expired at ...", "token issuer ... is not
//     trusted", ...). Verified tokens are cached per replica until they
//     expire.
//   - Subjects.AuthzCheck: [bus.CheckRequest] -> [bus.CheckResponse]. A
//     denial is a normal reply with Allow false and a specific Reason,
//     decided by the channel [Policy] (deny by default).
//
// Today the only credential source is the built-in development issuer,
// [DevIssuer], which signs ES256 tokens with a key kept in Config.DataDir so
// that Gatehouse runs without an outside identity provider. Trusted external
// OIDC issuers and API keys plug in later as further verifiers (see
// internal/verifier); API keys are refused for now.
package authz
