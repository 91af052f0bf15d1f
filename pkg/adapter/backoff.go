// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the jittered exponential backoff shared by the adapters'
// reconnect loops, the core's reply delivery and the agent client. The
// delay before retry n (counted from 0) is drawn uniformly from
// [c·(1−Jitter), c] where c = min(Min·2ⁿ, Max): a floor keeps a flapping
// platform from being hammered, the spread keeps many clients from
// retrying in step.
//
// Delay is stateless; Next and Reset keep the count for a loop that only
// knows "failed again" and "worked".
type Backoff struct {
	Min, Max time.Duration
	// Jitter is the random fraction of the delay, in [0, 1]. Zero means
	// one half ("equal jitter": the delay lies in [c/2, c]).
	Jitter float64

	n int // retries since the last Reset, for Next
}

// Delay returns the wait before retry n (0-based).
func (b Backoff) Delay(n int) time.Duration {
	c := b.Min
	for i := 0; i < n && c < b.Max; i++ {
		c *= 2
	}
	c = min(c, b.Max)
	if c <= 0 {
		return 0
	}
	j := b.Jitter
	if j <= 0 || j > 1 {
		j = 0.5
	}
	spread := time.Duration(float64(c) * j)
	return c - spread + rand.N(spread+1)
}

// Next returns the delay before the next retry and counts it.
func (b *Backoff) Next() time.Duration {
	d := b.Delay(b.n)
	b.n++
	return d
}

// Reset starts the sequence over: the next delay is the shortest again.
func (b *Backoff) Reset() { b.n = 0 }

// ReconnectBackoff is the usual backoff between connection attempts to a
// platform: one second, doubling up to one minute.
func ReconnectBackoff() Backoff { return Backoff{Min: time.Second, Max: time.Minute} }

// Sleep waits d or until ctx ends, and reports whether d passed. A d of
// zero or less returns at once, true unless ctx has ended.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
