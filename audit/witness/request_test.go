package witness

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const h1 = "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw="
const h2 = "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk="
const cpNote = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"

func TestParseAddCheckpoint(t *testing.T) {
	ok := []struct {
		name   string
		body   string
		old    uint64
		proofs int
	}{
		{"spec example", "old 20852014\n" + h1 + "\n" + h2 + "\n\n" + cpNote, 20852014, 2},
		{"old zero", "old 0\n\n" + cpNote, 0, 0},
		{"max size", "old 9223372036854775807\n\n" + cpNote, 1<<63 - 1, 0},
		{"63 lines", "old 1\n" + strings.Repeat(h1+"\n", 63) + "\n" + cpNote, 1, 63},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseAddCheckpoint([]byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if r.OldSize != c.old || len(r.Proof) != c.proofs || string(r.Checkpoint) != cpNote {
				t.Fatalf("parsed %d, %d proofs, %q", r.OldSize, len(r.Proof), r.Checkpoint)
			}
			if !bytes.Equal(r.Bytes(), []byte(c.body)) {
				t.Fatalf("Bytes() = %q, want the body back", r.Bytes())
			}
		})
	}
	bad := map[string]string{
		"empty":             "",
		"no newline":        "old 1",
		"no old":            "1\n\n" + cpNote,
		"OLD":               "OLD 1\n\n" + cpNote,
		"two spaces":        "old  1\n\n" + cpNote,
		"leading zero":      "old 01\n\n" + cpNote,
		"negative":          "old -1\n\n" + cpNote,
		"plus":              "old +1\n\n" + cpNote,
		"hex":               "old 0x1\n\n" + cpNote,
		"too big":           "old 9223372036854775808\n\n" + cpNote,
		"trailing space":    "old 1 \n\n" + cpNote,
		"crlf":              "old 1\r\n\r\n" + cpNote,
		"no empty line":     "old 1\n" + h1 + "\n",
		"no checkpoint":     "old 1\n" + h1 + "\n\n",
		"64 lines":          "old 1\n" + strings.Repeat(h1+"\n", 64) + "\n" + cpNote,
		"short hash":        "old 1\n" + h1[:40] + "\n\n" + cpNote,
		"unpadded hash":     "old 1\n" + strings.TrimSuffix(h1, "=") + "A\n\n" + cpNote,
		"url base64":        "old 1\n" + strings.ReplaceAll("/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=", "/", "_") + "\n\n" + cpNote,
		"non-canonical pad": "old 1\n" + h1[:42] + "x=\n\n" + cpNote,
		"too large":         "old 1\n\n" + strings.Repeat("x", MaxRequestSize),
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseAddCheckpoint([]byte(body)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseAddCheckpoint = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestParseCheckpoint(t *testing.T) {
	ok := map[string]string{
		"plain":      "o\n1\n" + h1 + "\n",
		"extensions": "o\n1\n" + h1 + "\next 1\next 2\n",
		"zero":       "o\n0\n" + h1 + "\n",
	}
	for n, text := range ok {
		t.Run(n, func(t *testing.T) {
			if _, err := parseCheckpoint([]byte(text)); err != nil {
				t.Fatal(err)
			}
		})
	}
	bad := map[string]string{
		"empty":           "",
		"no origin":       "\n1\n" + h1 + "\n",
		"no size":         "o\n",
		"bad size":        "o\n01\n" + h1 + "\n",
		"no root":         "o\n1\n",
		"bad root":        "o\n1\nxyz\n",
		"no final nl":     "o\n1\n" + h1,
		"empty extension": "o\n1\n" + h1 + "\n\n",
	}
	for n, text := range bad {
		t.Run(n, func(t *testing.T) {
			if _, err := parseCheckpoint([]byte(text)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("parseCheckpoint = %v, want ErrMalformed", err)
			}
		})
	}
}
