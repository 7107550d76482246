package bundle

import (
	"bytes"
	"errors"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// openCheckpoint verifies that the signed note msg carries a valid signature by the log
// key v and parses its body. Cosignature lines of other keys (witnesses) are ignored here.
func openCheckpoint(msg []byte, v note.Verifier) (audit.Checkpoint, error) {
	c, _, err := audit.OpenCheckpoint(msg, note.VerifierList(v))
	return c, err
}

// checkInclusion verifies that record is leaf index of the checkpoint's tree.
func checkInclusion(c audit.Checkpoint, index uint64, record []byte, proof [][32]byte) error {
	p := make(tlog.RecordProof, len(proof))
	for i, h := range proof {
		p[i] = h
	}
	return audit.VerifyInclusion(c, index, record, p)
}

// unsignedCheckpoint parses the body of the signed note msg without checking any
// signature (WithUnsignedCheckpoint): the text up to the blank line that ends it.
func unsignedCheckpoint(msg []byte) (audit.Checkpoint, error) {
	i := bytes.Index(msg, []byte("\n\n"))
	if i < 0 {
		return audit.Checkpoint{}, errors.New("no note body (no blank line before the signatures)")
	}
	return audit.ParseCheckpoint(msg[:i+1])
}
