//go:build unix

package identity

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// callWithHangGuard runs fn in a goroutine. The timeout is not an assertion about speed: it
// only turns a hang (the bug under test) into a failure instead of a stuck test binary.
func callWithHangGuard(t *testing.T, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("the call blocked: it opened a FIFO without O_NONBLOCK")
		return nil
	}
}

func TestKeyFilesNeverBlockOnFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "key.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "key.sock")
	if l, err := net.Listen("unix", sock); err == nil {
		defer l.Close()
	} else {
		sock = ""
	}
	paths := map[string]string{"FIFO": fifo, "symbolic link to a FIFO": link, "/dev/null": os.DevNull}
	if sock != "" {
		paths["unix socket"] = sock
	}
	for name, path := range paths {
		t.Run(name, func(t *testing.T) {
			if err := callWithHangGuard(t, func() error { _, err := ReadKeyFile(path); return err }); !errors.Is(err, ErrNotRegularFile) {
				t.Errorf("ReadKeyFile: %v", err)
			}
			if err := callWithHangGuard(t, func() error { _, err := LoadPrivateKeyFile(path); return err }); !errors.Is(err, ErrNotRegularFile) {
				t.Errorf("LoadPrivateKeyFile: %v", err)
			}
		})
	}
}

// TestOpenKeyFileNonBlocking: even past the type check (a FIFO swapped in after the stat),
// the open itself does not block, and the fstat refuses the file.
func TestOpenKeyFileNonBlocking(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "key.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	err := callWithHangGuard(t, func() error {
		f, err := os.OpenFile(fifo, os.O_RDONLY|openKeyFlags, 0)
		if err != nil {
			return err
		}
		return f.Close()
	})
	if err != nil {
		t.Fatalf("open with the key flags: %v", err)
	}
}
