package audit

import (
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestParseCheckpoint(t *testing.T) {
	root := "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	good := "example.com/log\n42\n" + root + "\n"
	c, err := ParseCheckpoint([]byte(good))
	if err != nil || c.Origin != "example.com/log" || c.Size != 42 || c.Root.String() != root {
		t.Fatalf("%+v %v", c, err)
	}
	if string(c.Body()) != good {
		t.Fatalf("Body %q", c.Body())
	}
	bad := map[string]string{
		"empty":           "",
		"no final eol":    "o\n1\n" + root,
		"extension line":  good + "ext\n",
		"empty origin":    "\n1\n" + root + "\n",
		"leading zero":    "o\n01\n" + root + "\n",
		"negative":        "o\n-1\n" + root + "\n",
		"plus sign":       "o\n+1\n" + root + "\n",
		"over int64":      "o\n9223372036854775808\n" + root + "\n",
		"short root":      "o\n1\nAAAA\n",
		"unpadded root":   "o\n1\n" + strings.TrimSuffix(root, "=") + "\n",
		"url base64 root": "o\n1\n" + strings.ReplaceAll(root, "+", "-") + "\n",
		"tab in origin":   "o\to\n1\n" + root + "\n",
		"bad utf8":        "o\xff\n1\n" + root + "\n",
		"long origin":     strings.Repeat("o", 257) + "\n1\n" + root + "\n",
		"crlf":            "o\r\n1\r\n" + root + "\r\n",
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseCheckpoint([]byte(body)); !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("accepted %q: %v", body, err)
			}
		})
	}
}

func TestSignOpenCheckpoint(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.com/log")
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	_, vkey2, _ := note.GenerateKey(rand.Reader, "example.com/log")
	v2, _ := note.NewVerifier(vkey2)
	c := Checkpoint{Origin: "example.com/log", Size: 7, Root: tlog.RecordHash([]byte("x"))}
	msg, err := SignCheckpoint(s, c)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := OpenCheckpoint(msg, note.VerifierList(v))
	if err != nil || got != c || !HasSignature(n, v) || HasSignature(n, v2) {
		t.Fatalf("%+v %v", got, err)
	}
	cases := map[string]struct {
		msg []byte
		v   note.Verifier
	}{
		"other key":   {msg, v2},
		"edited size": {[]byte(strings.Replace(string(msg), "\n7\n", "\n8\n", 1)), v},
		"huge":        {append([]byte(strings.Repeat("a", MaxCheckpointBytes)), msg...), v},
		"no sig":      {c.Body(), v},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, err := OpenCheckpoint(tc.msg, note.VerifierList(tc.v)); !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("got %v", err)
			}
		})
	}
	// A valid note whose text is not a checkpoint.
	other, _ := note.Sign(&note.Note{Text: "hello\n"}, s)
	if _, _, err := OpenCheckpoint(other, note.VerifierList(v)); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("non-checkpoint note: %v", err)
	}
	if _, err := SignCheckpoint(s, Checkpoint{Origin: "a\nb"}); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("origin with newline signed: %v", err)
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log.key")
	if _, err := LoadKey(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing key: %v", err)
	}
	s, err := LoadOrCreateKey(path, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if modeBitsMeaningful && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	again, err := LoadOrCreateKey(path, "ignored")
	if err != nil || again.Name() != "example.com/log" || again.KeyHash() != s.KeyHash() {
		t.Fatalf("reload: %v", err)
	}
	vkey, err := VerifierKey(again)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := SignCheckpoint(s, Checkpoint{Origin: "example.com/log", Size: 1})
	if _, n, err := OpenCheckpoint(msg, note.VerifierList(v)); err != nil || !HasSignature(n, v) {
		t.Fatalf("the verifier key does not verify the key's signature: %v", err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(vkey, strings.TrimSpace(string(data))) || !strings.HasPrefix(string(data), "PRIVATE+KEY+example.com/log+") {
		t.Fatal("key file format")
	}
	if modeBitsMeaningful {
		os.Chmod(path, 0o644)
		if _, err := LoadKey(path); !errors.Is(err, ErrKey) {
			t.Fatalf("world-readable key: %v", err)
		}
	}
	for name, content := range map[string]string{
		"garbage":   "hello",
		"verifier":  vkey,
		"truncated": string(data[:len(data)-10]),
		"too long":  strings.Repeat("A", 5000),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		_, err := LoadKey(p)
		if !errors.Is(err, ErrKey) {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(err.Error(), strings.TrimSpace(string(data))) {
			t.Fatalf("%s: the error shows the key", name)
		}
	}
	if _, err := LoadOrCreateKey(filepath.Join(dir, "bad"), "has space"); !errors.Is(err, ErrKey) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := VerifierKey(nil); err == nil {
		t.Fatal("foreign signer")
	}
	if _, err := NewVerifiers("nope"); !errors.Is(err, ErrKey) {
		t.Fatal("bad verifier key")
	}
}
