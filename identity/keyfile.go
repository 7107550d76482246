package identity

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MaxKeyFileSize bounds what ReadKeyFile reads. A PEM Ed25519 key is under 200 bytes.
const MaxKeyFileSize = 64 << 10

// ErrNotRegularFile is wrapped by the error for a key path that names a directory, a named
// pipe (FIFO), a device or a socket, or whose file changed while it was being opened.
var ErrNotRegularFile = errors.New("not a regular file")

// ReadKeyFile reads a key file: path (symbolic links followed) must name a regular file of
// at most MaxKeyFileSize bytes. Anything else is refused without being read, and without
// blocking: a FIFO with no writer would otherwise hang the open. On Unix the file is
// opened with O_NONBLOCK, and the type seen before the open must be a regular file and the
// open file the same one (checked with fstat, so a swap in between is caught).
func ReadKeyFile(path string) ([]byte, error) {
	f, _, err := openKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readKeyFile(f, path)
}

// openKeyFile opens path for reading if it is a regular file, and returns its fstat.
func openKeyFile(path string) (*os.File, fs.FileInfo, error) {
	before, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, nil, notRegular(path, before.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openKeyFlags, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(path, st.Mode())
	}
	if !os.SameFile(before, st) {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w (the file was replaced while being opened)", path, ErrNotRegularFile)
	}
	return f, st, nil
}

func readKeyFile(f *os.File, path string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a key file", path, MaxKeyFileSize)
	}
	return data, nil
}

func notRegular(path string, mode fs.FileMode) error {
	what := "not a plain file"
	switch {
	case mode.IsDir():
		what = "a directory"
	case mode&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case mode&fs.ModeSocket != 0:
		what = "a socket"
	case mode&fs.ModeDevice != 0:
		what = "a device"
	}
	return fmt.Errorf("%s: %w: it is %s", path, ErrNotRegularFile, what)
}
