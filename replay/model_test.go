package replay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/storetest"
)

// FuzzMemoryAgainstModel drives a small Memory store (one or two shards, a
// small capacity, a small key space so keys repeat) with a sequence of
// operations decoded from the input, and checks every answer against a plain
// map. It exercises the hash table's tombstones and rehashes and the expiry
// queue's bucket boundaries.
func FuzzMemoryAgainstModel(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0x80, 1, 2, 0xff, 0xfe, 3})
	f.Add([]byte{7, 7, 7, 0x90, 7, 0xc0, 7})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const maxEntries = 24
		c := storetest.NewClock(storetest.Epoch())
		shards := 1
		if len(ops) > 0 && ops[0]&1 == 1 {
			shards = 2
		}
		m := replay.NewMemory(replay.MemoryConfig{MaxEntries: maxEntries, Now: c.Now, Shards: shards})
		model := map[byte]time.Time{} // key → expiry
		ctx := context.Background()
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			if op&0x80 != 0 {
				// Advance by up to ~2.1 s in steps that straddle the 1.07 s buckets.
				c.Advance(time.Duration(arg) * 8_388_608 * time.Nanosecond)
				continue
			}
			now := c.Now()
			for k, exp := range model {
				if !exp.After(now) {
					delete(model, k)
				}
			}
			key := arg % 40
			exp := now.Add(time.Duration(op&0x3f) * 37 * time.Millisecond) // 0 = already expired
			fresh, err := m.Record(ctx, []byte{key, 0xaa}, exp)
			_, live := model[key]
			switch {
			case live:
				if err != nil || fresh {
					t.Fatalf("op %d: live key %d: fresh=%v err=%v, want a replay", i, key, fresh, err)
				}
			case !exp.After(now):
				if err != nil || !fresh {
					t.Fatalf("op %d: expired record of key %d: fresh=%v err=%v", i, key, fresh, err)
				}
			case len(model) >= maxEntries:
				if !errors.Is(err, replay.ErrFull) {
					t.Fatalf("op %d: key %d with %d live: fresh=%v err=%v, want ErrFull", i, key, len(model), fresh, err)
				}
			default:
				if err != nil || !fresh {
					t.Fatalf("op %d: new key %d: fresh=%v err=%v", i, key, fresh, err)
				}
				model[key] = exp
			}
		}
		now := c.Now()
		live := 0
		for _, exp := range model {
			if exp.After(now) {
				live++
			}
		}
		if got := m.Len(); got != live {
			t.Fatalf("Len = %d, model has %d live keys", got, live)
		}
	})
}
