// Package server is the HTTP API of TrustHandoff (the sidecar behind `trusthandoff serve`):
// a thin layer over the verify pipeline, the pending-approval store, the revocation store
// and the registry. In the source repository, spec/http-api.md gives its rules and
// api/openapi.yaml the wire contract, requests and responses both, which a test checks
// against the handlers.
//
// Agents authenticate with bearer tokens (Tokens maps the SHA-256 of each token to an
// agent id; the token itself is never stored). A token makes the server verify as that
// agent: a packet addressed to anyone else is rejected wrong_recipient. It also makes the
// server sign as that agent (handoffs, capabilities, approvals) with a key the server holds
// (Config.Signers), so keys never enter agent processes. Verification without a token is
// allowed only with Config.OpenVerify, and then binds no recipient. Operators hold one
// admin token for the registry and for revocations of anything.
//
// Every failure answers with a status code and {"error": {"code", "message"}}; messages
// never contain tokens or key material. Store failures fail closed (503, never ACCEPT).
package server
