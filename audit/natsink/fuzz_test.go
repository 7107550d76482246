package natsink

import (
	"errors"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// FuzzDecodeEvent: no message panics the decoder; what it accepts is an event the file
// log records.
func FuzzDecodeEvent(f *testing.F) {
	good, _ := audit.MarshalLine(event("n", 1))
	f.Add(good)
	f.Add([]byte(`{"event_id":"e","payload":{"n":1e400}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"payload":{"a":[[[[[[[[[[1]]]]]]]]]]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("error %v does not wrap ErrInvalidMessage", err)
			}
			return
		}
		if _, err := audit.MarshalLine(ev); err != nil {
			t.Fatalf("decoded event cannot be recorded: %v", err)
		}
	})
}

// FuzzMsgID: every message id is a valid header value of bounded length.
func FuzzMsgID(f *testing.F) {
	f.Add("0193-abc")
	f.Add("a\r\nb")
	f.Fuzz(func(t *testing.T, id string) {
		got := MsgID(id)
		if len(got) > audit.MaxStringBytes {
			t.Fatalf("MsgID %d bytes", len(got))
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("MsgID %q has byte %#x", got, c)
			}
		}
		if (got == "") != (id == "") {
			t.Fatalf("MsgID(%q) = %q", id, got)
		}
	})
}
