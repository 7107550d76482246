package witness

import "os"

// syncDir: Windows cannot fsync a directory; NTFS journals the rename itself.
func syncDir(*os.File) error { return nil }
