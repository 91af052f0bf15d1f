// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/secret"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Test timing: short enough for a package run well under 20 s, long enough
// that a loaded CI machine does not hit them by accident.
const (
	testPollTimeout    = time.Second
	testRequestTimeout = 500 * time.Millisecond
	testConflictWindow = 300 * time.Millisecond
	wait               = 5 * time.Second
)

var (
	dm  = telegramtest.Chat{ID: 555, Type: "private"}
	ann = telegramtest.User{ID: 555, FirstName: "Ann", LastName: "Lee", Username: "ann"}
)

type harness struct {
	fake    *telegramtest.Server
	a       *Adapter
	inbox   *adaptertest.Inbox
	st      *adaptertest.Statuses
	metrics *adaptertest.Metrics
	logs    *logtest.Hook
	env     adapter.Env
	conf    *Config
}

// newHarness builds an adapter against a fresh fake. At the end of the test
// it stops the adapter, closes the fake, checks that no goroutine is left
// and that the token appears in no log entry.
func newHarness(t *testing.T, tweak ...func(*Config)) *harness {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs last
	h := &harness{fake: telegramtest.New(t, "")}
	h.conf = testConfig(t, h.fake)
	for _, f := range tweak {
		f(h.conf)
	}
	h.env, h.st, h.metrics = adaptertest.Env(t, "tg")
	h.logs = logtest.NewLocal(h.env.Log.Logger)
	h.inbox = &adaptertest.Inbox{}
	h.a = h.build(t)
	adaptertest.NoSecretLogged(t, h.logs, h.fake.Token)
	return h
}

// build makes another adapter on the same fake, inbox and recorders (a
// restart).
func (h *harness) build(t *testing.T) *Adapter {
	t.Helper()
	a, err := New(h.conf, h.env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	a.minBackoff, a.maxBackoff = adaptertest.FastBackoff.Min, adaptertest.FastBackoff.Max
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	return a
}

func testConfig(t *testing.T, fake *telegramtest.Server) *Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(fake.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := NewConfig()
	c.Token = secret.Ref{File: path}
	c.APIURL = fake.URL
	c.PollTimeout = testPollTimeout
	c.RequestTimeout = testRequestTimeout
	c.ConflictWindow = testConflictWindow
	return c
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	if err := h.a.Start(context.Background(), h.inbox); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

// waitStatus waits for a report after the first `after` reports that
// satisfies pred, and returns its index and value.
func (h *harness) waitStatus(t *testing.T, after int, what string, pred func(adapter.Status) bool) (int, adapter.Status) {
	t.Helper()
	var idx int
	var got adapter.Status
	testwait.For(t, what, func() bool {
		all := h.st.All()
		for i := after; i < len(all); i++ {
			if pred(all[i]) {
				idx, got = i, all[i]
				return true
			}
		}
		return false
	})
	return idx, got
}

func phase(p adapter.Phase) func(adapter.Status) bool {
	return func(s adapter.Status) bool { return s.Phase == p }
}

// loopDone reports whether the intake goroutine has ended.
func (h *harness) loopDone() bool {
	done := h.a.life.RunDone()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

func (h *harness) logged(level logrus.Level, substr string) bool {
	for _, e := range h.logs.AllEntries() {
		if e.Level == level && strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}
