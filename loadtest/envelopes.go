package loadtest

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
)

// MaxEnvelopes bounds one call of Envelopes.
const MaxEnvelopes = 5_000_000

// Envelopes signs n handoffs from signer to agent to, asking for intent, and returns their
// JSON. Each has its own packet id, task id and nonce, so a verifier with a replay store
// accepts every one of them once. opts are passed to packet.Build for every envelope
// (actions, TTL, ...). The signing runs on every CPU.
func Envelopes(signer identity.Signer, to, intent string, n int, opts ...packet.BuildOption) ([][]byte, error) {
	if n < 0 || n > MaxEnvelopes {
		return nil, &ConfigError{Field: "n", Msg: fmt.Sprintf("%d envelopes is outside [0, %d]", n, MaxEnvelopes)}
	}
	out := make([][]byte, n)
	workers := min(runtime.GOMAXPROCS(0), max(n, 1))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				env, err := packet.Build(signer, to, intent, opts...)
				if err == nil {
					out[i], err = env.AppendJSON(nil)
				}
				if err != nil {
					errs[w] = fmt.Errorf("loadtest: envelope %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
