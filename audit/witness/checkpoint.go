package witness

import (
	"bytes"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// checkpoint is the part of a C2SP tlog-checkpoint note text a witness checks: origin,
// tree size and root hash. Extension lines after them are allowed, cosigned, and not
// interpreted.
type checkpoint struct {
	Origin string
	Size   uint64
	Root   tlog.Hash
}

// parseCheckpoint parses a checkpoint note text (the note without its signatures).
func parseCheckpoint(text []byte) (checkpoint, error) {
	var c checkpoint
	origin, rest, ok := bytes.Cut(text, []byte("\n"))
	if !ok || len(origin) == 0 {
		return c, fmt.Errorf("%w: checkpoint has no origin line", ErrMalformed)
	}
	size, rest, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return c, fmt.Errorf("%w: checkpoint has no size line", ErrMalformed)
	}
	root, rest, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return c, fmt.Errorf("%w: checkpoint has no root hash line", ErrMalformed)
	}
	for len(rest) > 0 {
		var ext []byte
		ext, rest, _ = bytes.Cut(rest, []byte("\n"))
		if len(ext) == 0 {
			return c, fmt.Errorf("%w: empty checkpoint extension line", ErrMalformed)
		}
	}
	n, err := parseSize(size)
	if err != nil {
		return c, err
	}
	h, err := parseHash(root)
	if err != nil {
		return c, err
	}
	return checkpoint{Origin: string(origin), Size: n, Root: h}, nil
}

// splitNote splits a signed note into its text (ending in a newline) and its signature
// lines (each ending in a newline), without checking the signatures.
func splitNote(msg []byte) (text, sigs []byte, err error) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 || len(msg) == i+2 || msg[len(msg)-1] != '\n' {
		return nil, nil, fmt.Errorf("%w: not a signed note", ErrMalformed)
	}
	return msg[:i+1], msg[i+2:], nil
}
