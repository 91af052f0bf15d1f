// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
)

// buckets tracks Discord's REST rate limits
// (https://docs.discord.com/developers/topics/rate-limits). A route (method
// and path template) belongs to a bucket named by X-RateLimit-Bucket; limits
// apply per bucket and major parameter (the channel id). Before the first
// response names the bucket, the route itself is the key.
type buckets struct {
	mu     sync.Mutex
	now    func() time.Time
	hash   map[string]string  // route -> bucket hash
	state  map[string]*bucket // bucket key -> state
	global time.Time          // all requests wait until then (global 429)
	log    *logrus.Entry      // records an X-RateLimit-Reset-After out of bounds
}

type bucket struct {
	remaining int
	reset     time.Time
}

func newBuckets() *buckets {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return &buckets{now: time.Now, hash: map[string]string{}, state: map[string]*bucket{}, log: logrus.NewEntry(l)}
}

func (b *buckets) key(route, major string) string {
	if h := b.hash[route]; h != "" {
		return h + ":" + major
	}
	return route + ":" + major
}

// reserve takes a slot in the bucket of (route, major) and returns 0, or
// returns how long to wait before trying again.
func (b *buckets) reserve(route, major string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if now.Before(b.global) {
		return b.global.Sub(now)
	}
	st := b.state[b.key(route, major)]
	if st == nil || !now.Before(st.reset) {
		// Unknown, or the window has passed: the next response tells.
		return 0
	}
	if st.remaining > 0 {
		st.remaining--
		return 0
	}
	return st.reset.Sub(now)
}

// acquire waits until a request on (route, major) may be sent. If the wait
// would outlast ctx it returns at once with a RetryAfterError: nothing was
// sent, and the core retries after the delay.
func (b *buckets) acquire(ctx context.Context, route, major string) error {
	for {
		wait := b.reserve(route, major)
		if wait <= 0 {
			return nil
		}
		limited := &adapter.RetryAfterError{After: wait, Err: fmt.Errorf("%w: bucket %s exhausted", adapter.ErrRateLimited, route)}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return limited
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return limited
		}
	}
}

// update records the X-RateLimit headers of a response.
func (b *buckets) update(route, major string, h http.Header) {
	hash := h.Get("X-RateLimit-Bucket")
	remaining, err1 := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	after, err2 := strconv.ParseFloat(h.Get("X-RateLimit-Reset-After"), 64)
	b.mu.Lock()
	defer b.mu.Unlock()
	if hash != "" {
		b.hash[route] = hash
	}
	if err1 == nil && err2 == nil && remaining >= 0 && after >= 0 {
		b.state[b.key(route, major)] = &bucket{remaining: remaining, reset: b.now().Add(boundSeconds(b.log, route+": X-RateLimit-Reset-After", after))}
	}
}

// limited records a 429: the bucket (or everything, if global) is closed
// for after.
func (b *buckets) limited(route, major string, after time.Duration, global bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	until := b.now().Add(after)
	if global {
		if until.After(b.global) {
			b.global = until
		}
		return
	}
	b.state[b.key(route, major)] = &bucket{remaining: 0, reset: until}
}

// boundSeconds converts a delay Discord sent in seconds, bounded by
// adapter.MaxRetryAfter; a clamp is logged with what names the value. It
// returns 0 for 0, a negative value or NaN: the caller takes its default.
func boundSeconds(log *logrus.Entry, what string, f float64) time.Duration {
	if !(f > 0) {
		return 0
	}
	d, clamped := adapter.BoundWait(f, time.Second, 0, adapter.MaxRetryAfter)
	if clamped {
		adapter.LogClamp(log, "discord: "+what, f, d)
	}
	return d
}

// cmdLimiter enforces Discord's gateway limit of 120 commands per 60 s per
// connection (heartbeats included) with a sliding window.
type cmdLimiter struct {
	mu     sync.Mutex
	now    func() time.Time
	limit  int
	window time.Duration
	sent   []time.Time
}

func newCmdLimiter(limit int, window time.Duration) *cmdLimiter {
	return &cmdLimiter{now: time.Now, limit: limit, window: window}
}

// reserve records a command and returns 0, or returns how long to wait.
func (l *cmdLimiter) reserve() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	i := 0
	for i < len(l.sent) && !l.sent[i].After(now.Add(-l.window)) {
		i++
	}
	l.sent = l.sent[i:]
	if len(l.sent) < l.limit {
		l.sent = append(l.sent, now)
		return 0
	}
	return l.sent[0].Add(l.window).Sub(now)
}

func (l *cmdLimiter) wait(ctx context.Context) error {
	for {
		d := l.reserve()
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
