//go:build !unix && !windows

package filelock

import (
	"errors"
	"os"
)

func lock(*os.File, bool) error { return errors.New("filelock: not supported on this platform") }

func unlock(*os.File) error { return errors.New("filelock: not supported on this platform") }
