// Package identity defines the verified caller ([Identity]) that the authz
// service produces and every other service trusts, and its encoding in the
// Gh-Identity NATS header. Only the edge sets that header; clients never reach
// NATS, so it cannot be forged from outside.
package identity
