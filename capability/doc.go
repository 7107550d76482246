// Package capability implements the DelegationCapability: portable, signed authority that
// one agent grants another and that can only narrow as it is delegated further
// .
//
// A capability travels as a token: base64url without padding of its compact, key-sorted,
// ASCII-escaped JSON (json.dumps(model_dump(mode="json"), sort_keys=True,
// separators=(",", ":")) in the Python reference). The issuer signs a different form:
// json.dumps(sort_keys=True) with the default ", " / ": " separators, the signature field
// left out and datetimes in Python str() form ("2026-04-01 12:00:00+00:00").
// [Capability.Token] and [Capability.SigningBytes] reproduce both byte for byte.
//
// Decoding is stricter than the reference: [DecodeToken] accepts exactly one
// spelling of a capability, the one [Capability.Token] produces, and rejects everything
// else (padding, unknown fields, wrong JSON types, naive datetimes, non-canonical or
// non-Ed25519 keys, signatures that are not 64 bytes) with reason malformed_envelope.
//
// A chain is a slice of capabilities, root first. [VerifyChain] checks that every link is
// signed by a key registered for its issuer, that the links connect (each names its
// parent and is issued by the parent's subject), that every link attenuates its parent,
// and that every link is live at the verification instant. Unlike the reference, a derived
// capability is signed by the deriving agent with its own key ([Derive]), and a child may
// not drop a limit its parent set (a null max_tool_calls under a limit is an escalation).
// A child whose constraints are null inherits the constraints in force above it.
//
// Revocation is not checked here: the caller checks every id of [IDs] against its
// revocation store. Because a chain carries all its ancestors, revoking one capability
// revokes everything derived from it.
package capability
