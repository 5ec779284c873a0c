// Package verifier turns credentials into a verified [identity.Identity].
// There is one [Verifier] per credential kind: [JWT] for bearer tokens from
// trusted issuers (today the built-in development issuer; external OIDC
// issuers plug in as further [Issuer] entries with a JWKS-backed [KeySet]),
// and [APIKeys] for API keys (not enabled yet). Every refusal is a
// *[Refusal] whose Reason is safe to show to the caller.
package verifier
