// Package attest implements TrustHandoff execution attestations: the signed statement by
// which an agent that executed a handoff reports its outcome.
//
// An [Attestation] names the packet, a [Status], the SHA-256 [OutcomeHash] of the result
// (and optionally of a reason), a random 128-bit [Nonce], a millisecond timestamp, the
// signer's agent id and key fingerprint, and an Ed25519 signature. The signature covers the
// binary framing of the reference implementation byte for byte ([Attestation.FramedBytes]):
//
//	"TRUSTHANDOFF_EXEC_ATTEST_V3\x00" "\x01"
//	then, each as a 4-byte big-endian length and the bytes:
//	packet_id, outcome_hash (32), status, nonce (16, big-endian),
//	timestamp_ms (8, big-endian), sha256(raw public key) (32), [reason_hash (32)]
//
// The outcome hash is SHA-256 of Python's json.dumps(sort_keys=True, separators=(",", ":"),
// ensure_ascii=False); floats are forbidden, as in the reference.
//
// Where this package is stricter than the reference: [Parse] rejects unknown fields,
// duplicate keys, wrong JSON types, out-of-range integers, non-canonical hex and
// base64url, and signatures that are not 64 bytes. [Verify] also binds signed_by (which the
// signature does not cover) to the verifying key, and can reject replays of (key, nonce)
// through a [NonceStore] that fails closed, signers revoked in a [RevocationStore]
// ([WithRevocations]), and attestations from anyone but the expected executor
// ([WithExpectedSigner]).
//
// With an agent registry, [VerifyRegistered] finds the signer ([ResolveSigner]): the agent
// signed_by names, through its registered key whose fingerprint the attestation carries.
// An agent whose key was rotated keeps its id, so it attests with the new key and
// [WithSignedBy] set to that id. Errors are *reason.Error values whose causes are the
// sentinels of this package, so callers use errors.Is and errors.As.
package attest
