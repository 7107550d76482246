package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// FuzzVerify: no log content panics the chain check.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"seq":1,"prev_hash":""}` + "\n"))
	f.Add([]byte("\n\n{"))
	f.Add([]byte(`{"seq":1,"prev_hash":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, last, err := Verify(bytes.NewReader(data))
		if err == nil && n > 0 && len(last) != 64 {
			t.Fatalf("%d records but last hash %q", n, last)
		}
		if err != nil && !errors.Is(err, ErrBroken) {
			t.Fatalf("content gave a non-chain error: %v", err)
		}
	})
}

// FuzzReadLongLines: with a small line limit, every input is either a chain of lines within
// the limit or a broken record; never a read error, never a panic.
func FuzzReadLongLines(f *testing.F) {
	f.Add([]byte(`{"seq":1,"prev_hash":""}`+"\n"), uint16(8))
	f.Add([]byte(strings.Repeat("x", 300)+"\n"+`{"seq":1}`), uint16(64))
	f.Add([]byte(`{"seq":1,"prev_hash":""}`+"\n"+`{"seq":2,"prev_hash":"`+strings.Repeat("a", 64)+`"}`), uint16(25))
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		if limit == 0 {
			return
		}
		var c chain
		err := c.read(bytes.NewReader(data), int(limit))
		if err != nil && !errors.Is(err, ErrBroken) {
			t.Fatalf("non-chain error: %v", err)
		}
		if err == nil {
			for line := range bytes.SplitAfterSeq(data, []byte("\n")) {
				if len(line) > int(limit) {
					t.Fatalf("accepted a line of %d bytes over the limit %d", len(line), limit)
				}
			}
			if c.bytes != int64(len(data)) {
				t.Fatalf("read %d of %d bytes", c.bytes, len(data))
			}
		}
	})
}

// FuzzBound: any payload and header strings give a record the reader accepts.
func FuzzBound(f *testing.F) {
	f.Add([]byte(`{"actions":["a","b"],"packet_id":"p"}`), "pkt-1")
	f.Add([]byte(`{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":[1]}}}}}}}}}`), strings.Repeat("<", 400))
	f.Add([]byte(`[1,2,3]`), "\xff\xfe")
	f.Add([]byte(`{"x":1e400}`), "")
	f.Fuzz(func(t *testing.T, data []byte, s string) {
		var payload map[string]any
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		if d.Decode(&payload) != nil {
			payload = map[string]any{"raw": string(data), string(data): []any{s, string(data)}}
		}
		ev := Event{EventID: s, EventType: s, ProducerID: s, CorrelationID: s, IdempotencyKey: s, Payload: payload}
		body, err := encodeJSON(Bound(ev))
		if err != nil {
			t.Fatalf("bounded event does not encode: %v", err)
		}
		line := append(appendRecord(nil, body, 1, ""), '\n')
		if len(line) > MaxLineBytes {
			t.Fatalf("line of %d bytes", len(line))
		}
		if n, _, err := Verify(bytes.NewReader(line)); err != nil || n != 1 {
			t.Fatalf("reader refused the record: %v", err)
		}
		var back Record
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatal(err)
		}
		checkBounded(t, back.Payload)
	})
}

// FuzzParseCheckpoint: no body panics the parser; whatever parses re-encodes to itself.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("example.com/log\n42\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	f.Add([]byte("o\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	f.Add([]byte("o\n01\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := ParseCheckpoint(body)
		if err != nil {
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("error not wrapping ErrCheckpoint: %v", err)
			}
			return
		}
		if !bytes.Equal(c.Body(), body) {
			t.Fatalf("%q parsed to %+v, which encodes to %q", body, c, c.Body())
		}
	})
}

// FuzzOpenCheckpoint: no note panics the opener; what opens was signed by the known key.
func FuzzOpenCheckpoint(f *testing.F) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.com/log")
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	good, _ := SignCheckpoint(s, Checkpoint{Origin: "example.com/log", Size: 3})
	f.Add(good)
	f.Add(append(good, "— other.example AAAA\n"...))
	f.Add([]byte("example.com/log\n3\n\n— x y\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, n, err := OpenCheckpoint(msg, note.VerifierList(v))
		if err != nil {
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("error not wrapping ErrCheckpoint: %v", err)
			}
			return
		}
		if !HasSignature(n, v) || !bytes.HasPrefix(msg, c.Body()) {
			t.Fatalf("opened without the key's signature: %q", msg)
		}
	})
}

// FuzzParseProof: no document panics the parser or the verifier.
func FuzzParseProof(f *testing.F) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.com/log")
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	l, _ := memLog(f, 5)
	c, _ := l.Checkpoint("example.com/log", 5)
	signed, _ := SignCheckpoint(s, c)
	p, _ := l.Prove(2, signed, c)
	good, _ := json.Marshal(p)
	f.Add(good)
	f.Add([]byte(`{"version":"trusthandoff/audit-proof/v1","proof":["AAAA"]}`))
	f.Add([]byte(`{"version":"trusthandoff/audit-proof/v1","version":"x"}`))
	f.Add([]byte(`{"a":1} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProof(data)
		if err != nil {
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("error not wrapping ErrCheckpoint: %v", err)
			}
			return
		}
		if _, err := p.Verify(v); err == nil {
			// A valid proof must name a record of the log it was made from.
			if p.Index >= 5 || p.Record != string(l.Line(p.Index)) {
				t.Fatalf("a proof of a record not in the log verified: %+v", p)
			}
		} else if !errors.Is(err, ErrCheckpoint) {
			t.Fatalf("verify error not wrapping ErrCheckpoint: %v", err)
		}
	})
}

// FuzzReadLog: no file content panics the in-memory reader; what it accepts is a chain
// whose tree matches the compact range a writer keeps.
func FuzzReadLog(f *testing.F) {
	_, data := memLog(f, 3)
	f.Add(data)
	f.Add([]byte(`{"seq":1,"prev_hash":"","event_id":7}` + "\n"))
	f.Add([]byte("{\"seq\":1,\"prev_hash\":\"\"}\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := parseLog("", data)
		if err != nil {
			var be *BrokenError
			if !errors.As(err, &be) {
				t.Fatalf("not a *BrokenError: %v", err)
			}
			return
		}
		var r compactRange
		for i := range l.Size() {
			r.append(LeafHash(l.Line(i)))
		}
		if root, _ := l.Root(l.Size()); root != r.root() {
			t.Fatal("tree and compact range differ")
		}
	})
}
