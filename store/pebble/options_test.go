package pebble

import "testing"

// Every level filters its tables, so that a lookup of an absent key (a fresh nonce, an
// unrevoked agent) does not read them.
func TestOptionsFilterEveryLevel(t *testing.T) {
	o := options(nil)
	defer o.Cache.Unref()
	if len(o.Levels) == 0 {
		t.Fatal("no level options")
	}
	for i, l := range o.Levels {
		if l.FilterPolicy == nil {
			t.Errorf("level %d has no filter policy", i)
		}
	}
	if len(o.Filters) == 0 {
		t.Error("the filter policy is not registered for reading tables")
	}
}
