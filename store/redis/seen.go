package redis

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/trusthandoff/trusthandoff-go/replay"
)

var _ replay.Peeker = (*Store)(nil)

// Seen reports whether key is recorded and live, without recording it (dry runs). Redis
// expires keys itself, so a key that exists is live.
func (s *Store) Seen(ctx context.Context, key []byte) (bool, error) {
	if err := replay.CheckKey(key); err != nil {
		return false, err
	}
	if s.isClosed() {
		return false, fmt.Errorf("%w: %w", replay.ErrUnavailable, ErrClosed)
	}
	n, err := s.client.Exists(ctx, s.keys.replay+hex.EncodeToString(key)).Result()
	if err != nil {
		return false, unavailable(replay.ErrUnavailable, "seen", err)
	}
	return n > 0, nil
}
