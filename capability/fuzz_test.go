package capability

import (
	"encoding/base64"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/reason"
)

// checkDecoded is the property both fuzz targets check: a rejected token is rejected with
// malformed_envelope and no capability; an accepted one is canonical (Token returns it),
// decodes again to the same bytes, and can be verified without panicking.
func checkDecoded(t *testing.T, token string) {
	c, err := DecodeToken(token, Limits{})
	if err != nil {
		if c != nil || codeOf(err) != reason.MalformedEnvelope {
			t.Fatalf("DecodeToken = %v, %v (code %s)", c, err, codeOf(err))
		}
		return
	}
	tok := c.Token()
	if tok != token {
		t.Fatalf("accepted a non-canonical token:\n in  %s\n out %s", token, tok)
	}
	c2, err := DecodeToken(tok, Limits{})
	if err != nil {
		t.Fatalf("re-decoding Token(): %v", err)
	}
	if c2.Token() != tok || string(c2.SigningBytes()) != string(c.SigningBytes()) {
		t.Fatal("decode → Token → decode is not stable")
	}
	c.VerifySignature()
	switch err := VerifyChain([]*Capability{c}, fuzzRegistry, now); codeOf(err) {
	case reason.OK, reason.CapabilityInvalid, reason.CapabilityExpired:
	default:
		t.Fatalf("VerifyChain of one link: %v", err)
	}
	Authorize(c, []string{"read"}, nil)
}

var fuzzRegistry = func() *StaticRegistry {
	r, err := NewStaticRegistry(map[string]string{alice.id: alice.pem, bob.id: bob.pem})
	if err != nil {
		panic(err)
	}
	return r
}()

func fuzzSeeds(tb testing.TB) (tokens []string) {
	for _, v := range loadVectors(tb) {
		tokens = append(tokens, v.Tokens...)
	}
	for _, c := range baseChain(tb) {
		tokens = append(tokens, c.Token())
	}
	return tokens
}

func FuzzDecodeToken(f *testing.F) {
	for _, tok := range fuzzSeeds(f) {
		f.Add(tok)
		f.Add(tok + "=")
		f.Add(tok[:len(tok)/2])
	}
	f.Add("")
	f.Add("e30")
	f.Fuzz(checkDecoded)
}

// FuzzDecodeTokenJSON mutates the JSON inside the token, where the structure is.
func FuzzDecodeTokenJSON(f *testing.F) {
	for _, tok := range fuzzSeeds(f) {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"capability_id":"x","capability_id":"y"}`))
	f.Add([]byte(`{"constraints":[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoded(t, base64.RawURLEncoding.EncodeToString(data))
	})
}
