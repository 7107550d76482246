package filelock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.lock")
	a, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := Lock(a); err != nil {
		t.Fatal(err)
	}
	if err := TryLock(b); !errors.Is(err, ErrLocked) {
		t.Fatalf("second holder got %v, want ErrLocked", err)
	}
	if err := Unlock(a); err != nil {
		t.Fatal(err)
	}
	if err := TryLock(b); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	a.Close()
	c, _ := os.OpenFile(path, os.O_RDWR, 0o600)
	defer c.Close()
	if err := TryLock(c); !errors.Is(err, ErrLocked) {
		t.Fatalf("third holder got %v, want ErrLocked", err)
	}
	b.Close() // closing releases
	if err := TryLock(c); err != nil {
		t.Fatalf("after close: %v", err)
	}
}
