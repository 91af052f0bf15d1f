// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Redeliver calls post again, every interval, until it answers 200 or ctx
// ends, the way a platform redelivers a webhook until it is acknowledged.
// It returns how many attempts were made.
func Redeliver(ctx context.Context, interval time.Duration, post func(context.Context) (int, error)) (int, error) {
	for n := 1; ; n++ {
		code, err := post(ctx)
		if err == nil && code == http.StatusOK {
			return n, nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return n, fmt.Errorf("not delivered after %d attempts (last: %d %v): %w", n, code, err, ctx.Err())
		case <-t.C:
		}
	}
}
