package server

import (
	"context"
	"time"
)

// WatchRevocations follows the revocation stream until ctx ends (or Close), recording in
// the metric trusthandoff_revocation_propagation_seconds how long each revocation took to
// reach this node. A lost stream is re-opened.
func (s *Server) WatchRevocations(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for ctx.Err() == nil {
		ch, err := s.store.Watch(ctx)
		if err == nil {
			for e := range ch {
				if d := s.now().Sub(e.At); d >= 0 {
					s.metrics.propagation.Observe(d.Seconds())
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
