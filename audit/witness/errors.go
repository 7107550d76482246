package witness

import (
	"errors"
	"fmt"
	"net/http"
)

// Outcomes of an add-checkpoint request. Server.AddCheckpoint and Push return an *Error
// wrapping one of them (or ErrMalformed, ErrState); the HTTP status is the one C2SP
// tlog-witness assigns.
var (
	// ErrUnknownLog: the witness knows no log with the checkpoint's origin (404; some
	// witnesses, litewitness among them, answer 403).
	ErrUnknownLog = errors.New("witness: unknown log origin")
	// ErrForbidden: no signature on the checkpoint verifies with a key the witness
	// trusts for its origin (403).
	ErrForbidden = errors.New("witness: checkpoint not signed by a trusted log key")
	// ErrConflict: the old size is not the size the witness last cosigned (409; Error.Size
	// says what it is).
	ErrConflict = errors.New("witness: old size does not match the witness's latest checkpoint")
	// ErrFork: the witness cosigned a checkpoint of the same size with another root hash
	// (409): the log has shown two histories. errors.Is(ErrFork, ErrConflict) holds.
	ErrFork = fmt.Errorf("%w: same size, different root hash (fork)", ErrConflict)
	// ErrRollback: the witness has cosigned a larger tree than the checkpoint (409): the
	// log was truncated or rewritten. errors.Is(ErrRollback, ErrConflict) holds.
	ErrRollback = fmt.Errorf("%w: the witness has cosigned a larger tree", ErrConflict)
	// ErrInconsistent: the consistency proof does not prove the checkpoint extends the
	// one the witness last cosigned (422).
	ErrInconsistent = errors.New("witness: consistency proof does not verify")
	// ErrUnavailable: the witness could not be reached or failed (5xx, network error,
	// timeout); nothing was cosigned.
	ErrUnavailable = errors.New("witness: unavailable")
	// ErrBadCosignature: a witness's response holds no valid cosignature by the expected
	// witness key, or an invalid one.
	ErrBadCosignature = errors.New("witness: no valid cosignature")
)

// Error is the error of one add-checkpoint request.
type Error struct {
	Status int    // HTTP status code (0 when no response was received)
	Size   uint64 // with ErrConflict: the size of the witness's latest cosigned checkpoint
	Err    error  // the outcome: ErrMalformed, ErrUnknownLog, ErrForbidden, ErrConflict, ...
	Detail string // what was wrong, bounded, never a key
}

func (e *Error) Error() string {
	msg := e.Err.Error()
	if errors.Is(e.Err, ErrConflict) {
		msg = fmt.Sprintf("%s (witness size %d)", msg, e.Size)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// statusOf maps an outcome to its C2SP tlog-witness HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnknownLog):
		return http.StatusNotFound
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrInconsistent):
		return http.StatusUnprocessableEntity
	default:
		return http.StatusInternalServerError
	}
}

func requestError(sentinel error, format string, args ...any) *Error {
	return &Error{Status: statusOf(sentinel), Err: sentinel, Detail: fmt.Sprintf(format, args...)}
}
