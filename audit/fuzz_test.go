package audit

import (
	"bytes"
	"testing"
)

// FuzzVerify: no log content panics the chain check.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"seq":1,"prev_hash":""}` + "\n"))
	f.Add([]byte("\n\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, last, err := Verify(bytes.NewReader(data))
		if err == nil && n > 0 && len(last) != 64 {
			t.Fatalf("%d records but last hash %q", n, last)
		}
	})
}
