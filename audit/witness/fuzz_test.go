package witness

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func FuzzParseAddCheckpoint(f *testing.F) {
	f.Add([]byte("old 20852014\n" + h1 + "\n" + h2 + "\n\n" + cpNote))
	f.Add([]byte("old 0\n\n" + cpNote))
	f.Add([]byte("old 1\n\n"))
	f.Add([]byte("old 01\n" + h1 + "x\n\n" + cpNote))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseAddCheckpoint(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// The format is canonical: a parsed request re-encodes to the same bytes.
		if !bytes.Equal(r.Bytes(), body) {
			t.Fatalf("Bytes() = %q, body %q", r.Bytes(), body)
		}
		if len(r.Proof) > MaxProofLines || len(r.Checkpoint) == 0 {
			t.Fatalf("accepted %d proof lines, %d-byte checkpoint", len(r.Proof), len(r.Checkpoint))
		}
	})
}

// FuzzAddCheckpoint feeds hostile bodies to a witness that knows one log: it never panics,
// answers with a C2SP status, and cosigns only checkpoints signed by the log's key.
func FuzzAddCheckpoint(f *testing.F) {
	lg := newTestLog(f, "example.com/log")
	lg.tree.add(f, "a", 6)
	c := fixedCosigner(f, "witness.example/w", 5, t0)
	srv := newTestServer(f, f.TempDir(), c, lg.verifier(f))
	f.Add(request(0, nil, lg.checkpoint(f, 3)))
	f.Add(request(3, lg.tree.proof(f, 3, 6), lg.checkpoint(f, 6)))
	f.Add(request(0, nil, []byte(cpNote)))
	f.Add([]byte("old 0\n\nexample.com/log\n1\n" + h1 + "\n\n— example.com/log AAAA\n"))
	logKey := note.VerifierList(lg.verifier(f))
	f.Fuzz(func(t *testing.T, body []byte) {
		cosig, err := srv.AddCheckpoint(body)
		if err != nil {
			switch statusOf(err) {
			case 400, 403, 404, 409, 422:
			default:
				t.Fatalf("status %d for %v", statusOf(err), err)
			}
			return
		}
		req, perr := ParseAddCheckpoint(body)
		if perr != nil {
			t.Fatalf("cosigned an unparsable request: %v", perr)
		}
		if _, err := note.Open(req.Checkpoint, logKey); err != nil {
			t.Fatalf("cosigned a checkpoint the log did not sign: %v", err)
		}
		if err := checkSigLines(cosig); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzNewCosignatureVerifier(f *testing.F) {
	f.Add(fixedCosigner(f, "witness.example/w1", 1, t0).VerifierKey())
	f.Add("a+00000000+BA==")
	f.Fuzz(func(t *testing.T, vkey string) {
		v, err := NewCosignatureVerifier(vkey)
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("error %v does not wrap ErrBadKey", err)
			}
			return
		}
		if v.String() != vkey {
			t.Fatalf("String() = %q, parsed from %q", v.String(), vkey)
		}
	})
}
