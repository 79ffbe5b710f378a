package oauth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/mailkeep/mailkeep/internal/flock"
)

// lockFile takes an exclusive flock on path (created 0600), waiting while
// ctx allows. The lock goes with the process if it dies.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = flock.TryLock(f)
		if err == nil {
			return func() { flock.Unlock(f); f.Close() }, nil
		}
		if !errors.Is(err, flock.ErrWouldBlock) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
