package reason

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The codes are public API: this is the published list (spec/protocol.md), in its order.
const designList = `malformed_envelope, unsupported_algorithm, unknown_agent, public_key_mismatch, agent_revoked,
invalid_signature, malformed_time_window, issued_in_future, expired, ttl_policy_mismatch,
unsupported_risk_level, capability_invalid, capability_escalation, capability_expired,
capability_revoked, action_not_authorized, depth_exceeded, delegation_loop,
human_review_required, approval_invalid, ai_provenance_invalid, policy_denied,
replay_detected, store_unavailable, wrong_recipient`

func TestCodesAreTheDesignList(t *testing.T) {
	var want []string
	for _, c := range strings.Split(designList, ",") {
		want = append(want, strings.TrimSpace(c))
	}
	if len(All()) != len(want) {
		t.Fatalf("%d codes, the spec lists %d", len(All()), len(want))
	}
	for i, c := range All() {
		if string(c) != want[i] {
			t.Errorf("code %d is %q, the spec says %q", i, c, want[i])
		}
	}
}

func TestOf(t *testing.T) {
	base := New(Expired, "expired 3s ago")
	wrapped := fmt.Errorf("verifying: %w", base)
	if Of(nil, PolicyDenied) != OK || Of(wrapped, PolicyDenied) != Expired || Of(errors.New("x"), PolicyDenied) != PolicyDenied {
		t.Fatal("Of does not find codes through wrapping")
	}
	cause := errors.New("disk full")
	if e := Wrap(StoreUnavailable, "replay store", cause); !errors.Is(e, cause) || e.Error() != "replay store: disk full" {
		t.Fatalf("Wrap: %v", e)
	}
}

func TestReceiptCodes(t *testing.T) {
	seen := map[Code]bool{}
	for _, c := range All() {
		seen[c] = true
	}
	for _, c := range ReceiptCodes() {
		if seen[c] {
			t.Errorf("receipt code %s is also a pipeline code", c)
		}
		seen[c] = true
		if !Known(c) {
			t.Errorf("Known(%s) is false", c)
		}
	}
	if Known("receipt_ok") || Known("") {
		t.Error("Known accepts an unknown code")
	}
}
