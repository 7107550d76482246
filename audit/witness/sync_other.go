//go:build !windows

package witness

import "os"

// syncDir makes a rename in d durable.
func syncDir(d *os.File) error { return d.Sync() }
