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
//
//   - Subjects.AuthzCheck: [bus.CheckRequest] -> [bus.CheckResponse]. A
//     denial is a normal reply with Allow false and a specific Reason,
//     decided by the channel [Policy] (deny by default).
//
//   - Subjects.AuthzCheck with a [bus.ModelCheckRequest] (op "invoke"):
//     may the caller use a model, by the [ModelPolicy] (plan and groups)
//     and, for an API key, the key's own model list.
//
//   - Subjects.AuthzKeysCreate, AuthzKeysList, AuthzKeysRevoke: API key
//     management for Gatehouse services and tools on the bus and members of
//     Config.AdminGroup (the edge forwards them from /v1/keys).
//
//   - Subjects.AuthzJWKS: the dev issuer's key set, served by the edge at
//     /.well-known/jwks.json.
//
// Credentials: the built-in development issuer, [DevIssuer], which signs
// ES256 tokens with a key kept in Config.DataDir; external OIDC issuers
// ([OIDCIssuer]: Cognito, Keycloak, Auth0, Entra, ...) verified with their
// JWKS; and API keys ("gh_..."), stored as SHA-256 hashes in the ledger
// database and checked in constant time. Revoking a key broadcasts a
// [bus.Revocation] on Subjects.AuthzRevoked: every edge closes the key's
// sockets and every authz replica drops its cached record at once. API key
// scopes (namespaces, models) are enforced in check.
package authz
