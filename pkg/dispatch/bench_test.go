// SPDX-License-Identifier: Apache-2.0

package dispatch_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/metrics"
	"github.com/heraldgw/herald/pkg/store"
)

// The pipeline benchmarks measure herald's core without HTTP: Deliver
// (store the inbound message, durably) → echo agent turn → Finish (outbox)
// → adapter Send → Delivered, with a real SQLite store in a temporary
// directory. cmd/herald-bench runs them and copies the results into
// BENCHMARKS.md; they assert nothing about timings.
//
// Sub-benchmarks:
//   - sync=full|normal: store.sync (fsync of every commit, or only of
//     checkpoints).
//   - serial: one message at a time, each waited for until its reply was
//     sent: ns/op is the per-message latency of the core.
//   - concurrent=N: N goroutines deliver messages of many sessions
//     (benchSessions conversation ids) without waiting for the replies;
//     the clock stops when the last reply was sent. msgs/s is the core's
//     throughput, ns/op its per-message cost under load.
//   - closed=N: N goroutines each deliver a message and wait for its reply
//     before the next (a closed loop, as herald-bench's throughput load):
//     msgs/s is bound by the latency of a message's commits, which the
//     batching of the store's writer decides.
func BenchmarkPipeline(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		for _, senders := range []int{1, 64} {
			name := fmt.Sprintf("sync=%s/concurrent=%d", sync, senders)
			if senders == 1 {
				name = fmt.Sprintf("sync=%s/serial", sync)
			}
			b.Run(name, func(b *testing.B) { benchPipeline(b, sync == "full", senders, false) })
		}
		b.Run(fmt.Sprintf("sync=%s/closed=64", sync), func(b *testing.B) { benchPipeline(b, sync == "full", 64, true) })
	}
}

// benchSessions is how many conversations the concurrent benchmarks spread
// their messages over, so that one turn per session does not serialise them.
const benchSessions = 1024

func benchPipeline(b *testing.B, syncFull bool, senders int, closed bool) {
	ctx := context.Background()
	var commits, statements, requests atomic.Int64
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "herald.db"), store.Options{SyncFull: syncFull,
		OnCommit: func(r, n int) { commits.Add(1); statements.Add(int64(n)); requests.Add(int64(r)) }})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	log := logrus.NewEntry(logger)
	ag, err := agent.New(config.Agent{Kind: "echo"}, log)
	if err != nil {
		b.Fatal(err)
	}
	rec := newRecorder("bench")
	d := dispatch.New(st, ag, map[string]dispatch.Platform{
		"bench": {Adapter: rec, Policy: dispatch.Policy{AllowAll: true}, Idempotent: true},
	}, dispatch.Options{}, log, metrics.New("bench"))
	if _, _, err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := d.Drain(dctx); err != nil {
			b.Error(err)
		}
	}()

	msg := func(i int) *message.Inbound {
		conv := fmt.Sprintf("conv-%d", i%benchSessions)
		return &message.Inbound{
			Platform: "bench", EventID: fmt.Sprintf("ev-%d-%d", b.N, i), ChatID: conv, ChatType: message.ChatDirect,
			SenderID: "u-" + conv, Text: "Please summarise the last build failure and suggest a fix.",
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	commits.Store(0)
	statements.Store(0)
	requests.Store(0)
	cpu0 := processCPU()
	io0 := processIO()
	start := time.Now()
	if senders == 1 {
		for i := range b.N {
			if err := d.Deliver(ctx, msg(i)); err != nil {
				b.Fatal(err)
			}
			rec.wait(b, d, i+1)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, senders)
		for range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= b.N {
						return
					}
					m := msg(i)
					var replied chan struct{}
					if closed {
						replied = rec.expect(message.IdempotencyKey(m.Platform, m.EventID, 1))
					}
					if err := d.Deliver(ctx, m); err != nil {
						errs <- err
						return
					}
					if closed {
						select {
						case <-replied:
						case <-time.After(stall):
							errs <- fmt.Errorf("no reply to message %d for %v", i, stall)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		rec.wait(b, d, b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	// CPU time and commits per message do not depend on how busy the
	// machine is, unlike ns/op.
	b.ReportMetric((processCPU()-cpu0).Seconds()*1e6/float64(b.N), "cpu-µs/msg")
	b.ReportMetric(float64(commits.Load())/float64(b.N), "commits/msg")
	b.ReportMetric(float64(statements.Load())/float64(b.N), "stmts/msg")
	if c := commits.Load(); c > 0 {
		b.ReportMetric(float64(requests.Load())/float64(c), "writes/commit")
	}
	// Bytes the process wrote: in write calls (wchar) and to the storage
	// layer (write_bytes: pages dirtied, what the device must eventually
	// take; a page written again while still dirty counts once).
	io1 := processIO()
	b.ReportMetric(float64(io1.wchar-io0.wchar)/float64(b.N), "wB/msg")
	b.ReportMetric(float64(io1.writeBytes-io0.writeBytes)/float64(b.N), "diskB/msg")
	if n := rec.distinct(); n != b.N {
		b.Fatalf("%d distinct replies sent for %d messages", n, b.N)
	}
}

// recorder is the benchmarks' platform: it records every send by
// idempotency key and wakes waiters.
type recorder struct {
	name string

	mu      sync.Mutex
	keys    map[string]bool
	sends   int
	changed chan struct{}
	waiters map[string]chan struct{}
}

// expect returns a channel closed when a reply with idempotency key key is
// sent.
func (r *recorder) expect(key string) chan struct{} {
	c := make(chan struct{})
	r.mu.Lock()
	r.waiters[key] = c
	r.mu.Unlock()
	return c
}

func newRecorder(name string) *recorder {
	return &recorder{name: name, keys: map[string]bool{}, changed: make(chan struct{}, 1), waiters: map[string]chan struct{}{}}
}

func (r *recorder) Name() string                               { return r.name }
func (r *recorder) Start(context.Context, adapter.Inbox) error { return nil }
func (r *recorder) Stop(context.Context) error                 { return nil }
func (r *recorder) Send(_ context.Context, m *message.Outbound) (adapter.SendResult, error) {
	r.mu.Lock()
	r.keys[m.IdempotencyKey] = true
	r.sends++
	if c := r.waiters[m.IdempotencyKey]; c != nil {
		close(c)
		delete(r.waiters, m.IdempotencyKey)
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return adapter.SendResult{MessageID: m.IdempotencyKey}, nil
}

// stall is how long wait accepts no new send before it fails: far above
// any single turn and delivery of the echo agent.
const stall = 10 * time.Second

// wait blocks until n sends were recorded. It fails when no send happens for
// stall, with the dispatcher's view of what is left.
func (r *recorder) wait(b *testing.B, d *dispatch.Dispatcher, n int) {
	t := time.NewTimer(stall)
	defer t.Stop()
	for {
		r.mu.Lock()
		got := r.sends
		r.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-r.changed:
			if !t.Stop() {
				<-t.C
			}
			t.Reset(stall)
		case <-t.C:
			st := d.Stats()
			b.Fatalf("%d of %d replies sent, none for %v; dispatcher: %d turns running, %d queued, %d replies pending, %d sending, %d sessions",
				got, n, stall, st.TurnsInFlight, st.Queued, st.RepliesPending, st.Sending, st.Sessions)
		}
	}
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

// Interface guards.
var _ adapter.Adapter = (*recorder)(nil)

// ioCounts are the write counters of /proc/self/io (zero where the kernel
// does not keep them).
type ioCounts struct{ wchar, writeBytes int64 }

func processIO() ioCounts {
	var c ioCounts
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return c
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "wchar":
			c.wchar = n
		case "write_bytes":
			c.writeBytes = n
		}
	}
	return c
}

// processCPU is the CPU time the test process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
