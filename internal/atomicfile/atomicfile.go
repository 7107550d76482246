// Package atomicfile replaces files so that a reader, or the file after a crash, holds the
// old content or the new, never a part of either.
package atomicfile

import (
	"os"
	"path/filepath"
	"runtime"
)

// Write replaces path with data, mode perm: a temporary file beside it is written, synced
// and renamed over path, and then the directory is synced so the rename survives a crash
// (on Windows, where a directory cannot be synced, the rename is as durable as the OS
// makes it).
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := write(tmp, data, perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func write(f *os.File, data []byte, perm os.FileMode) error {
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}
