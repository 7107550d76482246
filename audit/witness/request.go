package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"
)

// MaxRequestSize bounds an add-checkpoint request body (and so the checkpoint note in it):
// 63 proof lines take 2.9 KiB, a checkpoint with a few signatures well under 1 KiB.
const MaxRequestSize = 64 << 10

// MaxProofLines is the most consistency proof lines a request may carry (C2SP
// tlog-witness): enough for any tree of up to 2^63 leaves.
const MaxProofLines = 63

// ErrMalformed is wrapped by errors for a request, response or checkpoint that does not
// follow its wire format.
var ErrMalformed = errors.New("witness: malformed message")

// AddCheckpointRequest is the body of a tlog-witness add-checkpoint request: the size of
// the checkpoint the client believes the witness last cosigned, a consistency proof from
// that size to the new checkpoint, and the new checkpoint as a signed note.
type AddCheckpointRequest struct {
	OldSize    uint64
	Proof      tlog.TreeProof
	Checkpoint []byte
}

// ParseAddCheckpoint parses a request body strictly: "old N\n" (decimal, no leading
// zeros), at most MaxProofLines lines of one canonical base64 hash each, an empty line,
// then a non-empty checkpoint note (whose signatures the witness checks, not this
// function). Errors wrap ErrMalformed.
func ParseAddCheckpoint(body []byte) (*AddCheckpointRequest, error) {
	if len(body) > MaxRequestSize {
		return nil, fmt.Errorf("%w: request over %d bytes", ErrMalformed, MaxRequestSize)
	}
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no old size line", ErrMalformed)
	}
	num, ok := bytes.CutPrefix(line, []byte("old "))
	if !ok {
		return nil, fmt.Errorf("%w: first line is not \"old SIZE\"", ErrMalformed)
	}
	old, err := parseSize(num)
	if err != nil {
		return nil, err
	}
	req := &AddCheckpointRequest{OldSize: old}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return nil, fmt.Errorf("%w: no empty line before the checkpoint", ErrMalformed)
		}
		if len(line) == 0 {
			break
		}
		if len(req.Proof) == MaxProofLines {
			return nil, fmt.Errorf("%w: more than %d proof lines", ErrMalformed, MaxProofLines)
		}
		h, err := parseHash(line)
		if err != nil {
			return nil, err
		}
		req.Proof = append(req.Proof, h)
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("%w: no checkpoint", ErrMalformed)
	}
	req.Checkpoint = rest
	return req, nil
}

// Bytes returns the request body.
func (r *AddCheckpointRequest) Bytes() []byte {
	var b bytes.Buffer
	b.WriteString("old ")
	b.WriteString(strconv.FormatUint(r.OldSize, 10))
	b.WriteByte('\n')
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// parseSize parses a tree size: ASCII decimal, no sign, no leading zeros, at most 2^63-1
// (the largest size golang.org/x/mod/sumdb/tlog handles).
func parseSize(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 19 || (b[0] == '0' && len(b) > 1) {
		return 0, fmt.Errorf("%w: bad tree size %q", ErrMalformed, truncate(b))
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: bad tree size %q", ErrMalformed, truncate(b))
		}
	}
	n, err := strconv.ParseUint(string(b), 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%w: tree size out of range", ErrMalformed)
	}
	return n, nil
}

// parseHash parses one canonical standard-base64 32-byte hash.
func parseHash(b []byte) (tlog.Hash, error) {
	var h tlog.Hash
	if len(b) != base64.StdEncoding.EncodedLen(len(h)) {
		return h, fmt.Errorf("%w: bad hash %q", ErrMalformed, truncate(b))
	}
	// Decode needs room for DecodedLen (33 bytes): unpadded input decodes to more than 32.
	var buf [33]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:], b)
	if err != nil || n != len(h) {
		return h, fmt.Errorf("%w: bad hash %q", ErrMalformed, truncate(b))
	}
	copy(h[:], buf[:n])
	return h, nil
}

// truncate bounds an input fragment quoted in an error.
func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
