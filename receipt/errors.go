package receipt

import (
	"encoding/hex"
	"errors"
)

// Sentinels wrapped by the *reason.Error values of Parse and Verify, for errors.Is.
var (
	// ErrMalformed: the receipt (or the envelope given with it) is not well-formed.
	// Code malformed_envelope (unsupported_algorithm for another signature_algo).
	ErrMalformed = errors.New("receipt: malformed")
	// ErrPacketMismatch: the receipt names another packet than the envelope's.
	// Code receipt_packet_mismatch.
	ErrPacketMismatch = errors.New("receipt: names another packet")
	// ErrWrongExecutor: the executor is not the packet's to_agent. Code wrong_executor.
	ErrWrongExecutor = errors.New("receipt: executor is not the packet's receiver")
	// ErrExecutorKey: the executor is not registered, its public_key is not one of its
	// keys valid at the verification time, or the registry revoked it. Code unknown_agent,
	// public_key_mismatch or agent_revoked. Sign wraps it (without a code) when the
	// signer's public key is not a usable Ed25519 key.
	ErrExecutorKey = errors.New("receipt: executor key not valid")
	// ErrSignature: the signature does not verify. Code invalid_signature. Sign wraps it
	// (without a code) when the signer returns a signature that does not verify.
	ErrSignature = errors.New("receipt: signature does not verify")
	// ErrOutsideValidity: execution did not lie inside the packet's validity window.
	// Code execution_outside_validity.
	ErrOutsideValidity = errors.New("receipt: execution outside the packet's validity")
	// ErrStale: finished_at is ahead of the verifier's clock by more than the skew (code
	// issued_in_future) or older than the maximum age (code expired).
	ErrStale = errors.New("receipt: outside the freshness window")
	// ErrOutcomeMismatch: the outcome or reason given to Verify is not the one the receipt
	// hashes. Code outcome_mismatch.
	ErrOutcomeMismatch = errors.New("receipt: outcome does not match")
	// ErrRevoked: the executor is revoked in the revocation store. Code agent_revoked.
	ErrRevoked = errors.New("receipt: executor revoked")
	// ErrDependency: a depends_on receipt is missing or does not verify. Code
	// dependency_invalid; the error also wraps a *DependencyError naming it.
	ErrDependency = errors.New("receipt: dependency invalid")
	// ErrReplay: the receipt's nonce was already used. Code replay_detected.
	ErrReplay = errors.New("receipt: nonce already used")
	// ErrStoreUnavailable: the replay store, the revocation store or the audit sink
	// failed; the receipt is not accepted (fail closed). Code store_unavailable.
	ErrStoreUnavailable = errors.New("receipt: store unavailable")
)

// DependencyError names the depends_on receipt that failed and why.
type DependencyError struct {
	Digest [32]byte // the digest depends_on names
	Err    error    // the dependency's own failure (a *reason.Error)
}

func (e *DependencyError) Error() string {
	return "dependency " + hex.EncodeToString(e.Digest[:]) + ": " + e.Err.Error()
}

// Unwrap returns the dependency's failure.
func (e *DependencyError) Unwrap() error { return e.Err }
