// SPDX-License-Identifier: Apache-2.0

package slack

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
	"github.com/heraldgw/herald/pkg/adapter/slack/slacktest"
	"github.com/heraldgw/herald/pkg/secret"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait is the timeout of every condition a test waits for; the conditions
// normally hold within milliseconds.
const wait = 5 * time.Second

// checkLeaks registers a goroutine check that runs after every other
// cleanup of the test (the adapter's Stop, the fake's Close).
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

type harness struct {
	t     *testing.T
	fake  *slacktest.Server
	a     *Adapter
	inbox *adaptertest.Inbox
	st    *adaptertest.Statuses
	m     *adaptertest.Metrics
	logs  *logtest.Hook
}

// fastOptions are fake timings that keep the package under its time budget.
func fastOptions() slacktest.Options {
	return slacktest.Options{
		PingInterval:    200 * time.Millisecond,
		RedeliverAfter:  300 * time.Millisecond,
		DisconnectGrace: 3 * time.Second,
	}
}

// newHarness starts a fake and builds (not starts) an adapter against it
// with short timings. mod may change the configuration.
func newHarness(t *testing.T, opts slacktest.Options, mod func(*Config)) *harness {
	t.Helper()
	checkLeaks(t)
	fake := slacktest.New(opts)
	t.Cleanup(fake.Close)
	conf := NewConfig()
	conf.AppToken = tokenFile(t, "app", fake.AppToken())
	conf.BotToken = tokenFile(t, "bot", fake.BotToken())
	conf.APIURL = fake.APIURL()
	conf.PingInterval = 100 * time.Millisecond
	conf.RequestTimeout = time.Second
	if mod != nil {
		mod(conf)
	}
	env, st, m := adaptertest.Env(t, "slack")
	a, err := New(conf, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	a.backoff = adapter.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	a.closeWait = 500 * time.Millisecond
	return &harness{t: t, fake: fake, a: a, inbox: &adaptertest.Inbox{}, st: st, m: m, logs: adaptertest.Logs(env)}
}

func tokenFile(t *testing.T, name, value string) secret.Ref {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret.Ref{File: p}
}

// start starts the adapter; it is stopped (gracefully, bounded) at cleanup.
func (h *harness) start() {
	h.t.Helper()
	if err := h.a.Start(context.Background(), h.inbox); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	h.t.Cleanup(func() { adaptertest.StopAfter(h.t, h.a, 2*time.Second) })
}

// connected starts the adapter and waits until it is connected; it returns
// the fake's connection id.
func (h *harness) connected() int {
	h.t.Helper()
	h.start()
	h.st.WaitPhase(h.t, "connected", wait)
	return h.fake.WaitHellos(h.t, 1, wait)
}

func mustRead(t *testing.T, r secret.Ref) secret.Value {
	t.Helper()
	v, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
