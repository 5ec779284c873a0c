// Package verifier turns bearer tokens into a verified [identity.Identity]:
// [JWT] verifies tokens of trusted issuers (the built-in development issuer
// with [StaticKeys], external OIDC issuers with a [JWKS] key set fetched from
// their jwks_uri, Cognito's token_use rules included). Every refusal is a
// *[Refusal] whose Reason is safe to show to the caller. API keys are
// verified by the authz service against its key store.
package verifier
