package attest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/trusthandoff/trusthandoff-go/attest"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// nonces is a minimal NonceStore for the example; use the project's replay stores.
type nonces struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (n *nonces) Record(_ context.Context, key []byte, _ time.Time) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen[string(key)] {
		return false, nil
	}
	n.seen[string(key)] = true
	return true, nil
}

// The executing agent attests its result; the delegator verifies the attestation against
// the result it received, and a second delivery of the same attestation is a replay.
func Example() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

	result, _ := canonical.Parse([]byte(`{"rows":3,"summary":"Résumé ✓"}`), canonical.Limits{})
	a, err := attest.Create(identity.NewKeySigner(key), "pkt-42", attest.StatusOK, result, nil, now)
	if err != nil {
		panic(err)
	}
	wire, _ := a.Marshal()

	// On the delegator's side.
	got, err := attest.Parse(wire)
	if err != nil {
		panic(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	store := &nonces{seen: map[string]bool{}}
	opts := []attest.Option{attest.WithOutcome(result, nil), attest.WithNonceStore(store)}

	fmt.Println(got.PacketID, got.Status, got.SignedBy == identity.AgentIDOf(pub))
	fmt.Println("first:", attest.Verify(got, pub, now.Add(2*time.Second), opts...))
	err = attest.Verify(got, pub, now.Add(3*time.Second), opts...)
	fmt.Println("again:", errors.Is(err, attest.ErrReplay), reason.Of(err, ""))
	// Output:
	// pkt-42 OK true
	// first: <nil>
	// again: true replay_detected
}

func ExampleOutcomeHash() {
	v, _ := canonical.Parse([]byte(`{"tags": ["a", "b"], "error": "timeout"}`), canonical.Limits{})
	h, _ := attest.OutcomeHash(v) // sha256 of {"error":"timeout","tags":["a","b"]}
	fmt.Printf("%x\n", h[:8])

	f, _ := canonical.Parse([]byte(`{"ratio": 0.5}`), canonical.Limits{})
	_, err := attest.OutcomeHash(f)
	fmt.Println(errors.Is(err, canonical.ErrFloat))
	// Output:
	// 02d40032416240e3
	// true
}

func ExampleParse() {
	a, err := attest.Parse([]byte(`{"packet_id":"pkt-vec-03","status":"ERROR",` +
		`"outcome_hash":"ef80430b21c05b5b6ff8bcaa9e1abbed179aa348e16334c14631267178f22695",` +
		`"nonce":340282366920938463463374607431768211455,"timestamp_ms":1775044800123,` +
		`"signed_by":"agent:m6wiXeRXet3uCBOB",` +
		`"agent_pubkey_fingerprint":"aaa5d54a81f4cca4dad930d657ef89081f157e7ea1ce6f559f23c70bc062ad57",` +
		`"signature":"nKEVWsKtvJO7Kv-UI_wtJD9LfIxtb_YJ-rl03LZFyy0M8AIrD5pchkaGUnjO3pAVVAcbLcqBW9UKaQu7FHTCCg",` +
		`"reason_hash":"52a24802f03311784b097d25200197f9fc3648216694c90b5f3fd31e04e8e1eb"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(a.Status, a.Nonce, a.Time().UTC().Format(time.RFC3339Nano), a.ReasonHash != nil)

	_, err = attest.Parse([]byte(`{"packet_id":"p","status":"DONE"}`))
	fmt.Println(reason.Of(err, ""), err)
	// Output:
	// ERROR 340282366920938463463374607431768211455 2026-04-01T12:00:00.123Z true
	// malformed_envelope status "DONE" is not one of OK, ERROR, PARTIAL, REJECTED, TIMEOUT
}

func ExampleVerify() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	result, _ := canonical.Parse([]byte(`{"ok":true}`), canonical.Limits{})
	a, _ := attest.Create(identity.NewKeySigner(key), "pkt-1", attest.StatusOK, result, nil, now)

	fmt.Println(attest.Verify(a, pub, now.Add(time.Minute)))

	err := attest.Verify(a, pub, now.Add(10*time.Minute))
	fmt.Println(errors.Is(err, attest.ErrStale), reason.Of(err, ""))

	a.Status = attest.StatusPartial
	err = attest.Verify(a, pub, now)
	fmt.Println(errors.Is(err, attest.ErrSignature), reason.Of(err, ""))
	// Output:
	// <nil>
	// true expired
	// true invalid_signature
}
