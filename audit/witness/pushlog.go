package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/internal/atomicfile"
)

// LogPush is what PushLog did.
type LogPush struct {
	Checkpoint audit.Checkpoint // the checkpoint pushed
	OldSize    uint64           // the size the witness had cosigned before
	Cosigned   []byte           // the pushed note with the witness's cosignature added
	Stored     string           // the file the cosignature was stored in
}

// errCheckpointMoved: LOG.checkpoint changed between reading and storing.
var errCheckpointMoved = errors.New("witness: the log's checkpoint changed meanwhile")

// PushLog has the witness at url (its submission prefix) cosign the signed checkpoint of
// the audit log at logPath and stores the cosignature. The checkpoint is read from
// checkpointPath, or from the log's own checkpoint file (audit.CheckpointPath) when
// checkpointPath is ""; it must match the log's records. The consistency proof from
// whatever size the witness last cosigned is computed from the log (see Submit). The
// cosignature, checked against wv, is added to the note in the file it was read from:
// the log's checkpoint file is rewritten under the log's lock, keeping the cosignatures
// of other witnesses (should a writer have refreshed it meanwhile, the newer checkpoint is
// pushed instead).
//
// Errors: those of audit.ReadLog (audit.ErrBroken, audit.ErrUnavailable); a missing
// checkpoint file wraps fs.ErrNotExist; a checkpoint that does not parse or does not
// match the log wraps audit.ErrCheckpoint; the witness's refusals are *Error values (see
// Push; ErrUnavailable when it cannot be reached); a reply without a valid cosignature by
// wv wraps ErrBadCosignature; failing to store wraps audit.ErrUnavailable.
func PushLog(ctx context.Context, url string, wv *Verifier, logPath, checkpointPath string, opts ...PushOption) (*LogPush, error) {
	if wv == nil {
		return nil, errors.New("witness: no witness verifier key")
	}
	explicit := checkpointPath != ""
	if !explicit {
		checkpointPath = audit.CheckpointPath(logPath)
	}
	for attempt := 0; ; attempt++ {
		l, err := audit.ReadLog(logPath)
		if err != nil {
			return nil, err
		}
		signed, err := audit.ReadCheckpointFile(checkpointPath)
		if err != nil {
			return nil, err
		}
		cp, err := unverifiedCheckpoint(signed)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", audit.ErrCheckpoint, checkpointPath, err)
		}
		if err := matchLog(l, cp); err != nil {
			return nil, err
		}
		res := &LogPush{Checkpoint: cp, Stored: checkpointPath}
		prove := func(old uint64) (tlog.TreeProof, error) {
			res.OldSize = old
			return l.ConsistencyProof(old, cp.Size)
		}
		lines, err := Submit(ctx, url, signed, prove, opts...)
		if err != nil {
			return nil, err
		}
		if res.Cosigned, err = AddCosignatures(signed, lines, wv); err != nil {
			return nil, err
		}
		if explicit {
			if err := atomicfile.Write(checkpointPath, res.Cosigned, 0o644); err != nil {
				return nil, fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
			}
			return res, nil
		}
		err = audit.UpdateCheckpointFile(logPath, func(cur []byte) ([]byte, error) {
			if !sameNoteText(cur, signed) {
				return nil, errCheckpointMoved
			}
			// Keep what is there (other witnesses' cosignatures) and add this one.
			return AddCosignatures(cur, lines, wv)
		})
		if errors.Is(err, errCheckpointMoved) && attempt < 3 {
			continue
		}
		if errors.Is(err, errCheckpointMoved) {
			return nil, fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
		}
		if err != nil {
			return nil, err
		}
		return res, nil
	}
}

// unverifiedCheckpoint parses a signed checkpoint note's body without checking its
// signatures: the witness checks the log's, and PushLog checks the body against the log.
func unverifiedCheckpoint(signed []byte) (audit.Checkpoint, error) {
	text, ok := noteText(signed)
	if !ok {
		return audit.Checkpoint{}, errors.New("not a signed note")
	}
	return audit.ParseCheckpoint(text)
}

func noteText(signed []byte) ([]byte, bool) {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return nil, false
	}
	return signed[:i+1], true
}

func sameNoteText(a, b []byte) bool {
	ta, ok1 := noteText(a)
	tb, ok2 := noteText(b)
	return ok1 && ok2 && bytes.Equal(ta, tb)
}

// matchLog checks that the log's first cp.Size records have cp's root.
func matchLog(l *audit.Log, cp audit.Checkpoint) error {
	if cp.Size > l.Size() {
		return fmt.Errorf("%w: the checkpoint covers %d records, the log holds %d", audit.ErrCheckpoint, cp.Size, l.Size())
	}
	root, err := l.Root(cp.Size)
	if err != nil {
		return fmt.Errorf("%w: %w", audit.ErrCheckpoint, err)
	}
	if root != cp.Root {
		return fmt.Errorf("%w: the log's first %d records do not match its checkpoint", audit.ErrCheckpoint, cp.Size)
	}
	return nil
}
