// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/feishu/feishutest"
	"github.com/heraldgw/herald/pkg/secret"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait is the timeout of every wait for an expected event; tests finish far
// sooner when the code is right.
const wait = 5 * time.Second

// testTiming keeps retries fast. The fake's bootstrap sends its own
// ClientConfig (retries at most 1 s apart, no random first delay).
var testTiming = timing{
	defaults: clientConfig{
		reconnectCount:    -1,
		reconnectInterval: 200 * time.Millisecond,
		reconnectNonce:    0,
		pingInterval:      30 * time.Second,
	},
	backoffBase:    10 * time.Millisecond,
	readGrace:      5 * time.Second,
	closeWait:      2 * time.Second,
	writeTimeout:   5 * time.Second,
	deliverTimeout: 5 * time.Second,
	botInfoTimeout: 2 * time.Second,
	botInfoRetry:   30 * time.Second,
}

type harness struct {
	t       *testing.T
	fake    *feishutest.Server
	a       *Adapter
	inbox   *adaptertest.Inbox
	st      *adaptertest.Statuses
	m       *adaptertest.Metrics
	logs    *logtest.Hook
	stopped bool
}

// newHarness builds a fake platform and an adapter pointed at it. mod may
// change the configuration before New. The adapter is stopped, the fake
// closed and goroutine leaks checked when the test ends.
func newHarness(t *testing.T, fo feishutest.Options, mod func(*Config)) *harness {
	t.Helper()
	// Registered first, so it runs last: after the adapter stopped and the
	// fake closed.
	t.Cleanup(func() { goleak.VerifyNone(t) })
	fake := feishutest.New(t, fo)
	path := filepath.Join(t.TempDir(), "app_secret")
	if err := os.WriteFile(path, []byte("test-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := newConfig(DomainFeishu)
	conf.AppID = "cli_test"
	conf.AppSecret = secret.Ref{File: path}
	conf.BaseURL = fake.URL()
	conf.RequestTimeout = 5 * time.Second
	if mod != nil {
		mod(conf)
	}
	env, st, m := adaptertest.Env(t, "feishu")
	a, err := New(conf, env)
	if err != nil {
		t.Fatal(err)
	}
	a.timing = testTiming
	a.cc = testTiming.defaults
	h := &harness{t: t, fake: fake, a: a, inbox: &adaptertest.Inbox{}, st: st, m: m, logs: adaptertest.Logs(env)}
	t.Cleanup(func() {
		if !h.stopped {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if err := a.Stop(ctx); err != nil {
				t.Errorf("Stop: %v", err)
			}
		}
	})
	return h
}

func (h *harness) start() {
	h.t.Helper()
	if err := h.a.Start(context.Background(), h.inbox); err != nil {
		h.t.Fatal(err)
	}
}

// connect starts the adapter and waits until it is connected.
func (h *harness) connect() {
	h.t.Helper()
	h.start()
	h.st.WaitPhase(h.t, adapter.PhaseConnected, wait)
	h.fake.WaitConnections(h.t, 1, wait)
}

// stopped asserts that every goroutine of the adapter has ended.
func (h *harness) assertStopped() {
	h.t.Helper()
	h.stopped = true
	select {
	case <-h.a.Life.RunDone():
	default:
		h.t.Fatal("intake goroutine still running after Stop")
	}
	select {
	case <-h.a.Life.Done():
	default:
		h.t.Fatal("adapter goroutines still running after Stop")
	}
	if got := h.st.Last().Phase; got != adapter.PhaseStopped {
		h.t.Errorf("last status %q, want %q", got, adapter.PhaseStopped)
	}
}

// waitRunDone waits for the intake goroutine to end by itself (fatal
// errors).
func (h *harness) waitRunDone() {
	h.t.Helper()
	select {
	case <-h.a.Life.RunDone():
	case <-time.After(wait):
		h.t.Fatal("intake goroutine did not end")
	}
}
