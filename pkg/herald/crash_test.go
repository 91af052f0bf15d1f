// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// TestCrashConsistency SIGKILLs herald at random moments while 200
// messages flow in through the webhook and replies flow out to a receiver
// that deduplicates on Idempotency-Key, as platforms that support it do.
// Senders retry until herald acknowledges (202), as platforms redeliver
// unacknowledged events. Afterwards every message must have exactly one
// reply as the receiver shows it: nothing lost, nothing shown twice.
func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs only without -short")
	}
	const messages = 200
	recv := webhooktest.NewReceiver(t)
	dir := t.TempDir()
	addr := freePort(t)
	cfg := writeConfig(t, testConfig{Dir: dir, HTTP: addr, ReplyURL: recv.URL, WordDelay: "2ms"})

	var (
		mu      sync.Mutex
		current = start(t, cfg, startOpts{})
	)
	current.ready()

	// Senders: 4 goroutines, each message retried until acknowledged.
	var acked atomic.Int64
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				for {
					code, err := post(t, addr, fmt.Sprintf("msg-%03d", i), fmt.Sprintf("conv-%d", i%10), fmt.Sprintf("m %03d", i))
					if err == nil && code == http.StatusAccepted {
						acked.Add(1)
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	go func() {
		for i := 0; i < messages; i++ {
			next <- i
		}
		close(next)
	}()

	// Killer: SIGKILL and restart at random moments while messages flow,
	// then once more while replies are being delivered.
	kills := 0
	for acked.Load() < messages || kills < 6 {
		time.Sleep(time.Duration(150+rand.IntN(350)) * time.Millisecond)
		mu.Lock()
		current.signal(syscall.SIGKILL)
		current.wait(10 * time.Second)
		kills++
		current = start(t, cfg, startOpts{})
		current.ready()
		mu.Unlock()
		if kills > 40 {
			t.Fatalf("senders made no progress: %d of %d acknowledged after %d restarts", acked.Load(), messages, kills)
		}
	}
	wg.Wait()

	// Every message gets its reply, as the platform shows it.
	testwait.Until(60*time.Second, func() bool { return len(recv.Delivered()) >= messages })
	got := map[string]int{}
	for _, r := range recv.Delivered() {
		got[r.Text]++
	}
	for i := 0; i < messages; i++ {
		want := fmt.Sprintf("echo: m %03d", i)
		if got[want] != 1 {
			t.Errorf("message %d: %d replies shown, want exactly 1", i, got[want])
		}
	}
	if len(got) != messages {
		t.Errorf("%d distinct replies shown, want %d", len(got), messages)
	}
	t.Logf("%d kills; %d replies shown; %d duplicate deliveries absorbed by the idempotency key", kills, len(recv.Delivered()), recv.Duplicates())
	current.signal(syscall.SIGTERM)
	if code := current.wait(10 * time.Second); code != 0 {
		t.Fatalf("final stop exit %d", code)
	}
}
