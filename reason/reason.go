// Package reason defines the stable reason codes of verification decisions (spec/protocol.md) and
// the error type that carries one. Every check in the protocol packages returns a *Error,
// so the pipeline maps failures to codes with errors.As, never by matching strings.
package reason

import "errors"

// Code is a stable, snake_case reason code. Codes are public API: never rename one.
type Code string

// Reason codes, in pipeline order.
const (
	OK                   Code = "ok"
	MalformedEnvelope    Code = "malformed_envelope"
	UnsupportedAlgorithm Code = "unsupported_algorithm"
	UnknownAgent         Code = "unknown_agent"
	PublicKeyMismatch    Code = "public_key_mismatch"
	AgentRevoked         Code = "agent_revoked"
	InvalidSignature     Code = "invalid_signature"
	MalformedTimeWindow  Code = "malformed_time_window"
	IssuedInFuture       Code = "issued_in_future"
	Expired              Code = "expired"
	TTLPolicyMismatch    Code = "ttl_policy_mismatch"
	UnsupportedRisk      Code = "unsupported_risk_level"
	CapabilityInvalid    Code = "capability_invalid"
	CapabilityEscalation Code = "capability_escalation"
	CapabilityExpired    Code = "capability_expired"
	CapabilityRevoked    Code = "capability_revoked"
	ActionNotAuthorized  Code = "action_not_authorized"
	DepthExceeded        Code = "depth_exceeded"
	DelegationLoop       Code = "delegation_loop"
	HumanReviewRequired  Code = "human_review_required"
	ApprovalInvalid      Code = "approval_invalid"
	AIProvenanceInvalid  Code = "ai_provenance_invalid"
	PolicyDenied         Code = "policy_denied"
	ReplayDetected       Code = "replay_detected"
	StoreUnavailable     Code = "store_unavailable"
	WrongRecipient       Code = "wrong_recipient"
)

// Receipt codes: the reasons an execution receipt (package receipt) is refused beyond the
// pipeline's own codes, which receipts reuse where they mean the same thing
// (malformed_envelope, unknown_agent, public_key_mismatch, agent_revoked,
// invalid_signature, issued_in_future, expired, replay_detected, store_unavailable).
const (
	// ReceiptPacketMismatch: the receipt names another packet (digest or packet id).
	ReceiptPacketMismatch Code = "receipt_packet_mismatch"
	// WrongExecutor: the receipt's executor is not the packet's to_agent.
	WrongExecutor Code = "wrong_executor"
	// ExecutionOutsideValidity: the execution started before the packet was issued or
	// finished after it expired, or finished before it started.
	ExecutionOutsideValidity Code = "execution_outside_validity"
	// OutcomeMismatch: the outcome (or reason) given to the verifier is not the one the
	// receipt hashes.
	OutcomeMismatch Code = "outcome_mismatch"
	// DependencyInvalid: a receipt named in depends_on is missing or does not verify.
	DependencyInvalid Code = "dependency_invalid"
)

// ReceiptCodes returns the receipt codes, in the order of the published list (a new slice
// on each call).
func ReceiptCodes() []Code {
	return []Code{ReceiptPacketMismatch, WrongExecutor, ExecutionOutsideValidity, OutcomeMismatch, DependencyInvalid}
}

// All returns every code except OK, in the order of the published list (a new slice on
// each call: the list is API, not shared state).
func All() []Code {
	return []Code{
		MalformedEnvelope, UnsupportedAlgorithm, UnknownAgent, PublicKeyMismatch, AgentRevoked,
		InvalidSignature, MalformedTimeWindow, IssuedInFuture, Expired, TTLPolicyMismatch,
		UnsupportedRisk, CapabilityInvalid, CapabilityEscalation, CapabilityExpired,
		CapabilityRevoked, ActionNotAuthorized, DepthExceeded, DelegationLoop, HumanReviewRequired,
		ApprovalInvalid, AIProvenanceInvalid, PolicyDenied, ReplayDetected, StoreUnavailable,
		WrongRecipient,
	}
}

// Known reports whether c is OK, one of All or one of ReceiptCodes.
func Known(c Code) bool {
	if c == OK {
		return true
	}
	for _, k := range All() {
		if k == c {
			return true
		}
	}
	for _, k := range ReceiptCodes() {
		if k == c {
			return true
		}
	}
	return false
}

// Error is a failure that carries its reason code. Msg is safe to show to callers: it never
// contains key material.
type Error struct {
	Code Code
	Msg  string
	Err  error // optional cause
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error with code and message.
func New(code Code, msg string) *Error { return &Error{Code: code, Msg: msg} }

// Wrap returns an *Error with code, message and cause.
func Wrap(code Code, msg string, err error) *Error { return &Error{Code: code, Msg: msg, Err: err} }

// Of returns the code carried by err: OK for nil, fallback for an error without a code.
func Of(err error, fallback Code) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return fallback
}
