// Package filelock takes exclusive, advisory, whole-file locks that the operating system
// releases when the holder exits (or is killed): flock(2) on Unix, LockFileEx on Windows.
//
// It serialises processes that write one file (the registry, an audit log); it is not a
// mutex between goroutines of one process, which must not lock the same file twice.
package filelock

import (
	"errors"
	"os"
)

// ErrLocked is returned by TryLock when another holder has the lock.
var ErrLocked = errors.New("filelock: file is locked by another process")

// Lock blocks until it holds an exclusive lock on f.
func Lock(f *os.File) error { return lock(f, true) }

// TryLock takes an exclusive lock on f without waiting, or returns ErrLocked.
func TryLock(f *os.File) error { return lock(f, false) }

// Unlock releases a lock taken on f. Closing f releases it too.
func Unlock(f *os.File) error { return unlock(f) }
