package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ProofVersion is the version of the inclusion proof document.
const ProofVersion = "trusthandoff/audit-proof/v1"

// MaxProofBytes bounds a proof document ParseProof accepts: a record line of at most
// MaxLineBytes (every character JSON-escaped at worst), a checkpoint note and the hashes.
const MaxProofBytes = 7*MaxLineBytes + MaxCheckpointBytes + 16<<10

// Proof is a self-contained inclusion proof: one record of a log, the signed checkpoint
// it is proven against, and the Merkle audit path between them. Anyone holding the log's
// verifier key checks it offline with Verify.
type Proof struct {
	Version    string           `json:"version"`    // ProofVersion
	EventID    string           `json:"event_id"`   // the record's event_id
	Index      uint64           `json:"index"`      // the record's leaf index: its seq - 1
	Record     string           `json:"record"`     // the record line, without its newline
	Checkpoint string           `json:"checkpoint"` // the signed checkpoint note
	Hashes     tlog.RecordProof `json:"proof"`      // the audit path, standard base64 hashes
}

// Prove returns the inclusion proof of record i (0-based) against the signed checkpoint
// signedCheckpoint, whose parsed form is c. It fails when c is not a checkpoint of this
// log (another root for its size, or more records than the log holds) or does not cover
// record i.
func (l *Log) Prove(i uint64, signedCheckpoint []byte, c Checkpoint) (*Proof, error) {
	root, err := l.Root(c.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if root != c.Root {
		return nil, fmt.Errorf("%w: the log's first %d records do not match the checkpoint", ErrCheckpoint, c.Size)
	}
	if i >= c.Size {
		return nil, fmt.Errorf("%w: record %d is not covered by the checkpoint of %d records", ErrCheckpoint, i+1, c.Size)
	}
	p, err := l.InclusionProof(i, c.Size)
	if err != nil {
		return nil, err
	}
	line := l.Line(i)
	if !utf8.Valid(line) {
		return nil, fmt.Errorf("audit: record %d is not UTF-8 and cannot be carried in a proof", i+1)
	}
	return &Proof{
		Version:    ProofVersion,
		EventID:    l.Record(i).EventID,
		Index:      i,
		Record:     string(line),
		Checkpoint: string(signedCheckpoint),
		Hashes:     p,
	}, nil
}

// ParseProof parses a proof document strictly: at most MaxProofBytes, exactly the fields
// of Proof (no unknown or duplicate ones, nothing after the object), the version
// ProofVersion, at most 64 hashes. It does not verify the proof (see Verify). Errors wrap
// ErrCheckpoint.
func ParseProof(data []byte) (*Proof, error) {
	if len(data) > MaxProofBytes {
		return nil, fmt.Errorf("%w: proof of %d bytes (limit %d)", ErrCheckpoint, len(data), MaxProofBytes)
	}
	if err := checkNoDuplicateKeys(data); err != nil {
		return nil, fmt.Errorf("%w: proof: %w", ErrCheckpoint, err)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var p Proof
	if err := d.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: proof: %s", ErrCheckpoint, shortErr(err))
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: proof: data after the object", ErrCheckpoint)
	}
	switch {
	case p.Version != ProofVersion:
		return nil, fmt.Errorf("%w: proof version %q, want %q", ErrCheckpoint, boundString(p.Version), ProofVersion)
	case len(p.Hashes) > 64:
		return nil, fmt.Errorf("%w: proof of %d hashes", ErrCheckpoint, len(p.Hashes))
	case len(p.Record) >= MaxLineBytes:
		return nil, fmt.Errorf("%w: record of %d bytes", ErrCheckpoint, len(p.Record))
	case len(p.Checkpoint) > MaxCheckpointBytes:
		return nil, fmt.Errorf("%w: checkpoint of %d bytes", ErrCheckpoint, len(p.Checkpoint))
	}
	return &p, nil
}

// checkNoDuplicateKeys refuses a JSON object with a repeated key at its top level, which
// decoders resolve differently.
func checkNoDuplicateKeys(data []byte) error {
	d := json.NewDecoder(bytes.NewReader(data))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("not a JSON object")
	}
	seen := map[string]bool{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return fmt.Errorf("malformed JSON")
		}
		k, _ := t.(string)
		if seen[k] {
			return fmt.Errorf("field %q repeated", boundString(k))
		}
		seen[k] = true
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return fmt.Errorf("malformed JSON")
		}
	}
	return nil
}

// Verify checks the proof: the checkpoint is signed by logKey (other signatures, such as
// witness cosignatures, are checked when their verifiers are in extra), the record names
// EventID and seq Index+1, and the record is leaf Index of the tree the checkpoint commits
// to. It returns the checkpoint. Errors wrap ErrCheckpoint.
func (p *Proof) Verify(logKey note.Verifier, extra ...note.Verifier) (Checkpoint, error) {
	if logKey == nil {
		return Checkpoint{}, fmt.Errorf("%w: no log key to verify the checkpoint with", ErrCheckpoint)
	}
	c, n, err := OpenCheckpoint([]byte(p.Checkpoint), note.VerifierList(append([]note.Verifier{logKey}, extra...)...))
	if err != nil {
		return Checkpoint{}, err
	}
	if !HasSignature(n, logKey) {
		return Checkpoint{}, fmt.Errorf("%w: the checkpoint is not signed by the log key %s", ErrCheckpoint, logKey.Name())
	}
	var rec struct {
		EventID string `json:"event_id"`
		Seq     uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(p.Record), &rec); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: the record is not a JSON record: %s", ErrCheckpoint, shortErr(err))
	}
	if rec.EventID != p.EventID || rec.Seq != p.Index+1 {
		return Checkpoint{}, fmt.Errorf("%w: the record is event %q with seq %d, the proof names %q at index %d", ErrCheckpoint, boundString(rec.EventID), rec.Seq, boundString(p.EventID), p.Index)
	}
	if err := VerifyInclusion(c, p.Index, []byte(p.Record), p.Hashes); err != nil {
		return Checkpoint{}, err
	}
	return c, nil
}
