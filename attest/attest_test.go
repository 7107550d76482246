package attest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// memStore is a NonceStore in memory; err makes every Record fail.
type memStore struct {
	mu      sync.Mutex
	seen    map[string]time.Time
	err     error
	records int
}

func (s *memStore) Record(_ context.Context, key []byte, expiresAt time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records++
	if s.err != nil {
		return false, s.err
	}
	if s.seen == nil {
		s.seen = map[string]time.Time{}
	}
	if _, ok := s.seen[string(key)]; ok {
		return false, nil
	}
	s.seen[string(key)] = expiresAt
	return true, nil
}

var _ NonceStore = (*memStore)(nil)

// forgetfulStore accepts every nonce (benchmarks).
type forgetfulStore struct{}

func (forgetfulStore) Record(context.Context, []byte, time.Time) (bool, error) { return true, nil }

var (
	testNow = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
)

func mustValue(t testing.TB, s string) canonical.Value {
	t.Helper()
	v, err := canonical.Parse([]byte(s), canonical.Limits{})
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return v
}

func newAttestation(t testing.TB, withReason bool) *Attestation {
	t.Helper()
	var why *canonical.Value
	if withReason {
		r := mustValue(t, `{"code":504,"detail":"upstream timed out"}`)
		why = &r
	}
	a, err := Create(identity.NewKeySigner(testKey), "pkt-1", StatusOK, mustValue(t, `{"rows":3,"summary":"Résumé ✓"}`), why, testNow)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return a
}

func wantCode(t *testing.T, err error, code reason.Code, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %s", code)
	}
	var re *reason.Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *reason.Error", err, err)
	}
	if re.Code != code {
		t.Errorf("code = %s, want %s (%v)", re.Code, code, err)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("error %v does not wrap %v", err, sentinel)
	}
}

func TestHostileInputs(t *testing.T) {
	good := `{"packet_id":"pkt-vec-02","status":"OK","outcome_hash":"5444d2943f4b470b6e67bf84800049645e3a0f6be9d49e58b616cbd32e4fb4c0","nonce":1512366075204170929049582354406559215,"timestamp_ms":1775044800123,"signed_by":"agent:m6wiXeRXet3uCBOB","agent_pubkey_fingerprint":"aaa5d54a81f4cca4dad930d657ef89081f157e7ea1ce6f559f23c70bc062ad57","signature":"r0rGIjf6EHNuXmrFC3ktuTntbjgKy_Oy6ICJXUiF2RQe0RO4WKCH4E3jY-2ijOeJfBmuNHaP-uV2nIBntowBAA","reason_hash":null}`
	const sig = "r0rGIjf6EHNuXmrFC3ktuTntbjgKy_Oy6ICJXUiF2RQe0RO4WKCH4E3jY-2ijOeJfBmuNHaP-uV2nIBntowBAA"
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatalf("base case: %v", err)
	}
	// edit replaces the first occurrence of old in good, failing if there is none.
	edit := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("test bug: %q not in the base case", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	without := func(field string) string {
		i := strings.Index(good, `"`+field+`":`)
		j := strings.Index(good[i:], `,"`)
		if j < 0 {
			return good[:i-1] + "}"
		}
		return good[:i] + good[i+j+1:]
	}
	cases := []struct{ name, in string }{
		{"empty input", ``},
		{"not JSON", `attestation`},
		{"array", `[]`},
		{"null", `null`},
		{"string", `"{}"`},
		{"empty object", `{}`},
		{"trailing data", good + `{}`},
		{"unknown field", edit(`"reason_hash":null`, `"reason_hash":null,"extra":1`)},
		{"unknown field signature_algo", edit(`{`, `{"signature_algo":"Ed25519",`)},
		{"duplicate key", edit(`"status":"OK"`, `"status":"OK","status":"OK"`)},
		{"duplicate key, differing", edit(`"status":"OK"`, `"status":"ERROR","status":"OK"`)},
		{"NaN", edit(`"nonce":1512366075204170929049582354406559215`, `"nonce":NaN`)},
		{"invalid UTF-8", edit(`pkt-vec-02`, "pkt-\xff")},
		{"lone surrogate", edit(`pkt-vec-02`, `pkt-\ud800`)},
		{"oversize", edit(`pkt-vec-02`, strings.Repeat("p", MaxSize))},
		{"nested too deep", edit(`"pkt-vec-02"`, `[[["x"]]]`)},
		{"packet_id empty", edit(`"pkt-vec-02"`, `""`)},
		{"packet_id number", edit(`"pkt-vec-02"`, `2`)},
		{"packet_id null", edit(`"pkt-vec-02"`, `null`)},
		{"packet_id object", edit(`"pkt-vec-02"`, `{}`)},
		{"status lower case", edit(`"OK"`, `"ok"`)},
		{"status unknown", edit(`"OK"`, `"DONE"`)},
		{"status padded", edit(`"OK"`, `"OK "`)},
		{"status number", edit(`"OK"`, `1`)},
		{"outcome_hash upper case", edit(`5444d2943f`, `5444D2943F`)},
		{"outcome_hash short", edit(`"5444d2943f4b470b6e67bf84800049645e3a0f6be9d49e58b616cbd32e4fb4c0"`, `"5444d2943f4b470b6e67bf84800049645e3a0f6be9d49e58b616cbd32e4fb4c"`)},
		{"outcome_hash long", edit(`4fb4c0"`, `4fb4c00"`)},
		{"outcome_hash not hex", edit(`5444d2943f`, `5444g2943f`)},
		{"outcome_hash with prefix", edit(`"5444d2943f4b470b6e67bf84800049645e3a0f6be9d49e58b616cbd32e4fb4c0"`, `"0x5444d2943f4b470b6e67bf84800049645e3a0f6be9d49e58b616cbd32e4fb4"`)},
		{"outcome_hash number", edit(`"5444d2943f4b470b6e67bf84800049645e3a0f6be9d49e58b616cbd32e4fb4c0"`, `5444`)},
		{"nonce negative", edit(`1512366075204170929049582354406559215`, `-1`)},
		{"nonce 2^128", edit(`1512366075204170929049582354406559215`, `340282366920938463463374607431768211456`)},
		{"nonce 10^39", edit(`1512366075204170929049582354406559215`, `1000000000000000000000000000000000000000`)},
		{"nonce 1000 digits", edit(`1512366075204170929049582354406559215`, strings.Repeat("9", 1000))},
		{"nonce float", edit(`1512366075204170929049582354406559215`, `1.0`)},
		{"nonce exponent", edit(`1512366075204170929049582354406559215`, `1e3`)},
		{"nonce string", edit(`1512366075204170929049582354406559215`, `"1512366075204170929049582354406559215"`)},
		{"nonce null", edit(`1512366075204170929049582354406559215`, `null`)},
		{"nonce bool", edit(`1512366075204170929049582354406559215`, `true`)},
		{"nonce leading zero", edit(`1512366075204170929049582354406559215`, `01`)},
		{"timestamp negative", edit(`1775044800123`, `-1`)},
		{"timestamp 2^63", edit(`1775044800123`, `9223372036854775808`)},
		{"timestamp float", edit(`1775044800123`, `1775044800123.0`)},
		{"timestamp string", edit(`1775044800123`, `"1775044800123"`)},
		{"signed_by empty", edit(`"agent:m6wiXeRXet3uCBOB"`, `""`)},
		{"signed_by number", edit(`"agent:m6wiXeRXet3uCBOB"`, `7`)},
		{"fingerprint short", edit(`aaa5d54a81`, `aaa5d54a8`)},
		{"fingerprint null", edit(`"aaa5d54a81f4cca4dad930d657ef89081f157e7ea1ce6f559f23c70bc062ad57"`, `null`)},
		{"signature padded", edit(sig, sig+"==")},
		{"signature standard alphabet", edit(sig, strings.NewReplacer("_", "/", "-", "+").Replace(sig))},
		{"signature non-zero trailing bits", edit(sig, sig[:85]+"B")},
		{"signature 63 bytes", edit(sig, sig[:84])},
		{"signature 65 bytes", edit(sig, sig+"AA")},
		{"signature with whitespace", edit(sig, sig[:40]+" "+sig[41:])},
		{"signature with newline", edit(sig, sig[:40]+`\n`+sig[42:])},
		{"signature empty", edit(`"`+sig+`"`, `""`)},
		{"signature null", edit(`"`+sig+`"`, `null`)},
		{"reason_hash empty", edit(`"reason_hash":null`, `"reason_hash":""`)},
		{"reason_hash short", edit(`"reason_hash":null`, `"reason_hash":"abcd"`)},
		{"reason_hash number", edit(`"reason_hash":null`, `"reason_hash":0`)},
		{"reason_hash false", edit(`"reason_hash":null`, `"reason_hash":false`)},
	}
	for _, f := range fieldNames[:len(fieldNames)-1] {
		cases = append(cases, struct{ name, in string }{"missing " + f, without(f)})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := Parse([]byte(c.in))
			if err == nil {
				t.Fatalf("Parse accepted %+v", a)
			}
			wantCode(t, err, reason.MalformedEnvelope, nil)
			if len(err.Error()) > 400 {
				t.Errorf("error message is %d bytes: hostile input must not be echoed whole", len(err.Error()))
			}
		})
	}

	// Accepted spellings of the same values: reason_hash absent, whitespace, any key order.
	for name, in := range map[string]string{
		"reason_hash absent": without("reason_hash"),
		"whitespace":         strings.ReplaceAll(strings.ReplaceAll(good, `,"`, ", \n\""), `":`, `" : `),
		"keys reordered":     edit(`{"packet_id":"pkt-vec-02","status":"OK",`, `{"status":"OK","packet_id":"pkt-vec-02",`),
	} {
		t.Run("accepts "+name, func(t *testing.T) {
			a, err := Parse([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if out, _ := a.Marshal(); string(out) != good {
				t.Errorf("Marshal = %s, want the reference form", out)
			}
		})
	}
}

// TestFieldErrors checks that a wrong-typed field is malformed_envelope, still a
// canonical.FieldError underneath, and named in the message; and that a hand-built Value
// with invalid UTF-8 in a free-text field is rejected.
func TestFieldErrors(t *testing.T) {
	good := `{"packet_id":"pkt-vec-02","status":"OK","outcome_hash":"5444d2943f4b470b6e67bf84800049645e3a0f6be9d49e58b616cbd32e4fb4c0","nonce":1512366075204170929049582354406559215,"timestamp_ms":1775044800123,"signed_by":"agent:m6wiXeRXet3uCBOB","agent_pubkey_fingerprint":"aaa5d54a81f4cca4dad930d657ef89081f157e7ea1ce6f559f23c70bc062ad57","signature":"r0rGIjf6EHNuXmrFC3ktuTntbjgKy_Oy6ICJXUiF2RQe0RO4WKCH4E3jY-2ijOeJfBmuNHaP-uV2nIBntowBAA","reason_hash":null}`
	for _, c := range []struct{ field, old, new string }{
		{"packet_id", `"pkt-vec-02"`, `""`},
		{"status", `"OK"`, `1`},
		{"timestamp_ms", `1775044800123`, `9223372036854775808`},
		{"signed_by", `"agent:m6wiXeRXet3uCBOB"`, `null`},
		{"reason_hash", `"reason_hash":null`, `"reason_hash":false`},
	} {
		t.Run(c.field, func(t *testing.T) {
			_, err := Parse([]byte(strings.Replace(good, c.old, c.new, 1)))
			if reason.Of(err, "") != reason.MalformedEnvelope || !errors.Is(err, canonical.ErrFieldType) || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("got %v, want malformed_envelope naming %s and wrapping canonical.ErrFieldType", err, c.field)
			}
		})
	}
	v, err := canonical.Parse([]byte(good), canonical.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"packet_id", "signed_by"} {
		t.Run(field+" invalid UTF-8", func(t *testing.T) {
			w := canonical.Value{Kind: canonical.Object, Obj: slices.Clone(v.Obj)}
			for i := range w.Obj {
				if w.Obj[i].Key == field {
					w.Obj[i].Value.Str = "x\xff"
				}
			}
			if _, err := FromValue(&w); reason.Of(err, "") != reason.MalformedEnvelope || !strings.Contains(err.Error(), field+" is not valid UTF-8") {
				t.Fatalf("got %v, want malformed_envelope: %s is not valid UTF-8", err, field)
			}
		})
	}
}

func TestRoundTripCreated(t *testing.T) {
	for _, withReason := range []bool{false, true} {
		a := newAttestation(t, withReason)
		out, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		b, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal()): %v\n%s", err, out)
		}
		if !equal(a, b) {
			t.Errorf("round trip changed the attestation:\n%+v\n%+v", a, b)
		}
		if err := Verify(b, testKey.Public().(ed25519.PublicKey), testNow); err != nil {
			t.Errorf("Verify after round trip: %v", err)
		}
	}
}

// equal compares attestations field by field, the optional reason hash by value.
func equal(a, b *Attestation) bool {
	x, y := *a, *b
	x.ReasonHash, y.ReasonHash = nil, nil
	if x != y || (a.ReasonHash == nil) != (b.ReasonHash == nil) {
		return false
	}
	return a.ReasonHash == nil || *a.ReasonHash == *b.ReasonHash
}

// TestTamperEachField changes every field of a genuine attestation and expects Verify to
// reject it with the right cause.
func TestTamperEachField(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey)
	cases := []struct {
		name   string
		tamper func(a *Attestation)
		cause  error
		code   reason.Code
	}{
		{"packet_id", func(a *Attestation) { a.PacketID = "pkt-2" }, ErrSignature, reason.InvalidSignature},
		{"packet_id suffix", func(a *Attestation) { a.PacketID += "\x00" }, ErrSignature, reason.InvalidSignature},
		{"status", func(a *Attestation) { a.Status = StatusPartial }, ErrSignature, reason.InvalidSignature},
		{"outcome_hash", func(a *Attestation) { a.OutcomeHash[31] ^= 1 }, ErrSignature, reason.InvalidSignature},
		{"nonce", func(a *Attestation) { a.Nonce[0] ^= 0x80 }, ErrSignature, reason.InvalidSignature},
		{"timestamp_ms", func(a *Attestation) { a.TimestampMS-- }, ErrSignature, reason.InvalidSignature},
		{"signature", func(a *Attestation) { a.Signature[10] ^= 4 }, ErrSignature, reason.InvalidSignature},
		{"reason_hash added", func(a *Attestation) { a.ReasonHash = new([32]byte) }, ErrSignature, reason.InvalidSignature},
		{"signed_by", func(a *Attestation) { a.SignedBy = identity.AgentIDOf(other) }, ErrKeyMismatch, reason.PublicKeyMismatch},
		{"fingerprint", func(a *Attestation) { a.Fingerprint = identity.Fingerprint(other) }, ErrKeyMismatch, reason.PublicKeyMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAttestation(t, false)
			if err := Verify(a, pub, testNow); err != nil {
				t.Fatalf("genuine attestation: %v", err)
			}
			c.tamper(a)
			err := Verify(a, pub, testNow)
			wantCode(t, err, c.code, c.cause)
		})
	}
	t.Run("reason_hash changed", func(t *testing.T) {
		a := newAttestation(t, true)
		a.ReasonHash[0] ^= 1
		wantCode(t, Verify(a, pub, testNow), reason.InvalidSignature, ErrSignature)
	})
	t.Run("reason_hash removed", func(t *testing.T) {
		a := newAttestation(t, true)
		a.ReasonHash = nil
		wantCode(t, Verify(a, pub, testNow), reason.InvalidSignature, ErrSignature)
	})
	t.Run("other key", func(t *testing.T) {
		wantCode(t, Verify(newAttestation(t, false), other, testNow), reason.PublicKeyMismatch, ErrKeyMismatch)
	})
	t.Run("short key", func(t *testing.T) {
		wantCode(t, Verify(newAttestation(t, false), pub[:31], testNow), reason.PublicKeyMismatch, ErrKeyMismatch)
	})
	t.Run("nil attestation", func(t *testing.T) {
		wantCode(t, Verify(nil, pub, testNow), reason.MalformedEnvelope, nil)
	})
}

// TestTamperEveryByte mutates each byte of each reference vector's wire JSON: a mutation
// that still parses must not verify, unless it decodes to the very same attestation.
func TestTamperEveryByte(t *testing.T) {
	for _, v := range loadVectors(t) {
		if !v.Expected.VerifyAttestation {
			continue
		}
		t.Run(v.ID, func(t *testing.T) {
			pub, orig := v.pub(t), []byte(v.AttestationJSON)
			genuine, err := Parse(orig)
			if err != nil {
				t.Fatal(err)
			}
			parsed := 0
			for i := range orig {
				for _, delta := range []byte{1, 0x20, 0x80} {
					m := bytes.Clone(orig)
					m[i] ^= delta
					a, err := Parse(m)
					if err != nil {
						continue
					}
					parsed++
					if err := Verify(a, pub, v.now()); err == nil && !equal(a, genuine) {
						t.Errorf("byte %d ^ %#x: mutated attestation verifies:\n%s", i, delta, m)
					}
				}
			}
			t.Logf("%d mutations parsed, none verified", parsed)
		})
	}
}

func TestOutcome(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	result := mustValue(t, `{"summary":"Résumé ✓","rows":3}`) // key order does not matter
	why := mustValue(t, `{"detail":"upstream timed out","code":504}`)
	null := mustValue(t, `null`)
	plain, withReason := newAttestation(t, false), newAttestation(t, true)
	rh, _ := OutcomeHash(result)
	wh, _ := OutcomeHash(why)
	cases := []struct {
		name string
		a    *Attestation
		opt  Option
		ok   bool
	}{
		{"result", plain, WithOutcome(result, nil), true},
		{"result, null reason", plain, WithOutcome(result, &null), true},
		{"result hash", plain, WithOutcomeHash(rh, nil), true},
		{"other result", plain, WithOutcome(mustValue(t, `{"rows":4,"summary":"Résumé ✓"}`), nil), false},
		{"unexpected reason hash", withReason, WithOutcome(result, nil), false},
		{"missing reason hash", plain, WithOutcome(result, &why), false},
		{"result and reason", withReason, WithOutcome(result, &why), true},
		{"result and reason hashes", withReason, WithOutcomeHash(rh, &wh), true},
		{"other reason", withReason, WithOutcome(result, &result), false},
		{"later option wins", plain, func(c *config) error { _ = WithOutcomeHash([32]byte{}, nil)(c); return WithOutcome(result, nil)(c) }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.a, pub, testNow, c.opt)
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, reason.InvalidSignature, ErrOutcomeMismatch)
		})
	}
	t.Run("float result", func(t *testing.T) {
		err := Verify(plain, pub, testNow, WithOutcome(mustValue(t, `{"rows":3.0}`), nil))
		wantCode(t, err, reason.MalformedEnvelope, canonical.ErrFloat)
	})
}

func TestFreshness(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	a := newAttestation(t, false)
	ts := a.Time()
	ms := time.Millisecond
	cases := []struct {
		name string
		now  time.Time
		opts []Option
		code reason.Code // OK when valid
	}{
		{"same instant", ts, nil, reason.OK},
		{"exactly max age", ts.Add(DefaultMaxAge), nil, reason.OK},
		{"max age + 1 ms", ts.Add(DefaultMaxAge + ms), nil, reason.Expired},
		{"a day old", ts.Add(24 * time.Hour), nil, reason.Expired},
		{"exactly skew ahead", ts.Add(-DefaultSkew), nil, reason.OK},
		{"skew + 1 ms ahead", ts.Add(-DefaultSkew - ms), nil, reason.IssuedInFuture},
		{"year 1", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), nil, reason.IssuedInFuture},
		{"year 9999", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), nil, reason.Expired},
		{"custom max age", ts.Add(11 * time.Second), []Option{WithMaxAge(10 * time.Second)}, reason.Expired},
		{"custom max age ok", ts.Add(10 * time.Second), []Option{WithMaxAge(10 * time.Second)}, reason.OK},
		{"zero skew", ts.Add(-ms), []Option{WithSkew(0)}, reason.IssuedInFuture},
		{"zero skew ok", ts, []Option{WithSkew(0)}, reason.OK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(a, pub, c.now, c.opts...)
			if c.code == reason.OK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, c.code, ErrStale)
		})
	}
	for _, o := range []Option{WithMaxAge(0), WithMaxAge(-time.Second), WithSkew(-time.Second)} {
		if err := Verify(a, pub, ts, o); err == nil {
			t.Error("invalid option accepted")
		}
	}
}

func TestReplay(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	ctx := context.Background()
	store := &memStore{}
	a := newAttestation(t, false)

	// Attestations that fail earlier checks consume nothing: a forger who copies the
	// nonce of a genuine attestation cannot burn it.
	forged := *a
	forged.Status = StatusError
	wantCode(t, VerifyContext(ctx, &forged, pub, testNow, WithNonceStore(store)), reason.InvalidSignature, ErrSignature)
	wantCode(t, VerifyContext(ctx, a, pub, testNow.Add(time.Hour), WithNonceStore(store)), reason.Expired, ErrStale)
	if store.records != 0 {
		t.Fatalf("rejected attestations recorded %d nonces", store.records)
	}

	if err := VerifyContext(ctx, a, pub, testNow, WithNonceStore(store)); err != nil {
		t.Fatalf("first use: %v", err)
	}
	key := ReplayKey(a)
	want := a.Time().Add(DefaultMaxAge + DefaultSkew)
	if got, ok := store.seen[string(key[:])]; !ok || !got.Equal(want) {
		t.Errorf("store holds %v (present %v), want the key until %v", got, ok, want)
	}
	wantCode(t, VerifyContext(ctx, a, pub, testNow.Add(time.Second), WithNonceStore(store)), reason.ReplayDetected, ErrReplay)

	// A copy on the wire is the same replay.
	out, _ := a.Marshal()
	b, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, Verify(b, pub, testNow, WithNonceStore(store)), reason.ReplayDetected, ErrReplay)

	// A fresh attestation from the same key is accepted.
	if err := Verify(newAttestation(t, false), pub, testNow, WithNonceStore(store)); err != nil {
		t.Errorf("second attestation: %v", err)
	}
}

func TestReplayKey(t *testing.T) {
	a := newAttestation(t, false)
	b := *a
	b.Nonce[15] ^= 1
	c := *a
	c.Fingerprint[0] ^= 1
	if ReplayKey(a) == ReplayKey(&b) || ReplayKey(a) == ReplayKey(&c) {
		t.Error("replay key ignores the nonce or the fingerprint")
	}
	d := *a
	d.PacketID, d.Status = "other", StatusError
	if ReplayKey(a) != ReplayKey(&d) {
		t.Error("replay key depends on more than (fingerprint, nonce)")
	}
}

func TestStoreFailureFailsClosed(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	down := errors.New("connection refused")
	err := Verify(newAttestation(t, false), pub, testNow, WithNonceStore(&memStore{err: down}))
	wantCode(t, err, reason.StoreUnavailable, ErrStoreUnavailable)
	if !errors.Is(err, down) {
		t.Errorf("error %v does not wrap the store's error", err)
	}
}

type badSigner struct {
	pub ed25519.PublicKey
	sig []byte
	err error
}

func (s badSigner) Public() ed25519.PublicKey   { return s.pub }
func (s badSigner) Sign([]byte) ([]byte, error) { return s.sig, s.err }

func TestCreate(t *testing.T) {
	signer := identity.NewKeySigner(testKey)
	pub := signer.Public()
	result := mustValue(t, `{"ok":true}`)

	t.Run("fields", func(t *testing.T) {
		a, err := Create(signer, "pkt-7", StatusTimeout, result, nil, testNow)
		if err != nil {
			t.Fatal(err)
		}
		wantHash, _ := OutcomeHash(result)
		switch {
		case a.PacketID != "pkt-7", a.Status != StatusTimeout, a.OutcomeHash != wantHash, a.ReasonHash != nil:
			t.Errorf("Create = %+v", a)
		case a.TimestampMS != testNow.UnixMilli(), !a.Time().Equal(testNow):
			t.Errorf("timestamp %d, want %d", a.TimestampMS, testNow.UnixMilli())
		case a.SignedBy != identity.AgentIDOf(pub), a.Fingerprint != identity.Fingerprint(pub):
			t.Errorf("identity fields %s %x", a.SignedBy, a.Fingerprint)
		}
		if err := Verify(a, pub, testNow, WithOutcome(result, nil)); err != nil {
			t.Error(err)
		}
	})
	t.Run("nonces differ", func(t *testing.T) {
		seen := map[Nonce]bool{}
		for range 64 {
			a, err := Create(signer, "p", StatusOK, result, nil, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if seen[a.Nonce] {
				t.Fatalf("nonce %s repeated", a.Nonce)
			}
			seen[a.Nonce] = true
		}
	})

	big := mustValue(t, `{"blob":"`+strings.Repeat("x", MaxPayloadSize)+`"}`)
	flt := mustValue(t, `{"n":[1,{"x":0.5}]}`)
	arr := mustValue(t, `[1]`)
	reserved := mustValue(t, `{"packet_id":"x"}`)
	cases := []struct {
		name     string
		signer   identity.Signer
		packetID string
		status   Status
		result   canonical.Value
		reason   *canonical.Value
		now      time.Time
		is       error
	}{
		{"empty packet id", signer, "", StatusOK, result, nil, testNow, nil},
		{"invalid UTF-8 packet id", signer, "p\xff", StatusOK, result, nil, testNow, nil},
		{"bad status", signer, "p", "DONE", result, nil, testNow, nil},
		{"result not an object", signer, "p", StatusOK, arr, nil, testNow, nil},
		{"reason not an object", signer, "p", StatusOK, result, &arr, testNow, nil},
		{"reserved key", signer, "p", StatusOK, reserved, nil, testNow, nil},
		{"reserved key in reason", signer, "p", StatusOK, result, &reserved, testNow, nil},
		{"float", signer, "p", StatusOK, flt, nil, testNow, canonical.ErrFloat},
		{"float in reason", signer, "p", StatusOK, result, &flt, testNow, canonical.ErrFloat},
		{"too large", signer, "p", StatusOK, big, nil, testNow, nil},
		{"clock before 2020", signer, "p", StatusOK, result, nil, time.Unix(0, 0), nil},
		{"nil signer", nil, "p", StatusOK, result, nil, testNow, nil},
		{"signer fails", badSigner{pub: pub, err: errors.New("kms down")}, "p", StatusOK, result, nil, testNow, nil},
		{"signer returns short signature", badSigner{pub: pub, sig: make([]byte, 63)}, "p", StatusOK, result, nil, testNow, ErrSignature},
		{"signer returns wrong signature", badSigner{pub: pub, sig: make([]byte, 64)}, "p", StatusOK, result, nil, testNow, ErrSignature},
		{"signer has no key", badSigner{}, "p", StatusOK, result, nil, testNow, ErrKeyMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := Create(c.signer, c.packetID, c.status, c.result, c.reason, c.now)
			if err == nil {
				t.Fatalf("Create accepted: %+v", a)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v does not wrap %v", err, c.is)
			}
		})
	}
}

func TestMarshalRejectsInvalid(t *testing.T) {
	for name, tamper := range map[string]func(*Attestation){
		"status":         func(a *Attestation) { a.Status = "ok" },
		"packet_id":      func(a *Attestation) { a.PacketID = "" },
		"packet_id UTF8": func(a *Attestation) { a.PacketID = "\xc0" },
		"signed_by":      func(a *Attestation) { a.SignedBy = "" },
		"timestamp":      func(a *Attestation) { a.TimestampMS = -1 },
	} {
		a := newAttestation(t, false)
		tamper(a)
		if out, err := a.Marshal(); err == nil {
			t.Errorf("%s: Marshal emitted %s", name, out)
		}
		wantCode(t, Verify(a, testKey.Public().(ed25519.PublicKey), testNow), reason.MalformedEnvelope, nil)
	}
}

func TestNonce(t *testing.T) {
	max := new(big.Int).Lsh(big.NewInt(1), 128)
	for _, s := range []string{"0", "1", "9", "10", "18446744073709551615", "18446744073709551616",
		"9999999999999999999", "10000000000000000000", "100000000000000000000000000000000000000",
		"1512366075204170929049582354406559215", "340282366920938463463374607431768211455",
		"340282366920938463463374607431768211454", "18446744073709551616000000000000000000"} {
		n, err := ParseNonce(s)
		if err != nil {
			t.Errorf("ParseNonce(%s): %v", s, err)
			continue
		}
		b, _ := new(big.Int).SetString(s, 10)
		if got := new(big.Int).SetBytes(n[:]); got.Cmp(b) != 0 {
			t.Errorf("ParseNonce(%s) = %s", s, got)
		}
		if n.String() != s {
			t.Errorf("String() = %s, want %s", n.String(), s)
		}
	}
	for _, s := range []string{"", "-1", "+1", "01", "00", "1.0", "1e3", " 1", "0x10", max.String(),
		new(big.Int).Mul(max, big.NewInt(7)).String(), strings.Repeat("1", 40)} {
		if n, err := ParseNonce(s); err == nil {
			t.Errorf("ParseNonce(%q) = %s, want an error", s, n)
		}
	}
}

func TestJSONInterfaces(t *testing.T) {
	a := newAttestation(t, true)
	data, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var b Attestation
	if err := b.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	if !equal(a, &b) {
		t.Error("JSON round trip changed the attestation")
	}
	if err := b.UnmarshalJSON([]byte(`{"packet_id":"x"}`)); err == nil {
		t.Error("UnmarshalJSON accepted an incomplete attestation")
	}
}
