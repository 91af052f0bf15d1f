// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/discord/discordtest"
	"github.com/heraldgw/herald/pkg/secret"
)

// wait is the bound for conditions that happen within milliseconds on
// loopback; generous for loaded CI machines.
const wait = 5 * time.Second

// leakCheck verifies, after every other cleanup of the test, that no
// goroutine is left. Call it first.
func leakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// tokenFile writes tok to a file and returns a reference to it.
func tokenFile(t *testing.T, tok string) secret.Ref {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret.Ref{File: p}
}

type harness struct {
	a       *Adapter
	srv     *discordtest.Server
	inbox   *adaptertest.Inbox
	status  *adaptertest.Statuses
	metrics *adaptertest.Metrics
	logs    *logtest.Hook
}

// newHarness builds an adapter against srv with short timings and no state
// directory. mut may change the configuration (e.g. a wrong token).
func newHarness(t *testing.T, srv *discordtest.Server, mut ...func(*Config)) *harness {
	t.Helper()
	return newStateHarness(t, srv, "", mut...)
}

// newStateHarness is newHarness with Env.StateDir = stateDir; adapters of
// one test sharing stateDir are successive herald processes.
func newStateHarness(t *testing.T, srv *discordtest.Server, stateDir string, mut ...func(*Config)) *harness {
	t.Helper()
	return newEnvHarness(t, srv, func(env *adapter.Env) { env.StateDir = stateDir }, mut...)
}

// newEnvHarness is newHarness with setEnv choosing the Env's state
// directory and States.
func newEnvHarness(t *testing.T, srv *discordtest.Server, setEnv func(*adapter.Env), mut ...func(*Config)) *harness {
	t.Helper()
	cfg := NewConfig()
	cfg.Token = tokenFile(t, srv.Token)
	cfg.APIURL = srv.APIURL
	cfg.RequestTimeout = 2 * time.Second
	for _, f := range mut {
		f(cfg)
	}
	env, st, m := adaptertest.Env(t, "discord")
	setEnv(&env)
	hook := logtest.NewLocal(env.Log.Logger)
	a, err := New(cfg, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	a.tun.backoffBase = 5 * time.Millisecond
	a.tun.backoffMax = 50 * time.Millisecond
	a.tun.invalidMin = 5 * time.Millisecond
	a.tun.invalidMax = 10 * time.Millisecond
	a.tun.closeBound = 500 * time.Millisecond
	a.tun.saveInterval = 20 * time.Millisecond
	h := &harness{a: a, srv: srv, inbox: &adaptertest.Inbox{}, status: st, metrics: m, logs: hook}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return h
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	if err := h.a.Start(context.Background(), h.inbox); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

// connected starts the adapter and waits for READY.
func (h *harness) connected(t *testing.T) {
	t.Helper()
	h.start(t)
	h.status.WaitPhase(t, adapter.PhaseConnected, wait)
	h.srv.Await(t, "live session", wait, h.srv.Live)
}

// runEnded reports whether the gateway goroutine has returned.
func (h *harness) runEnded() bool {
	select {
	case <-h.a.Life.RunDone():
		return true
	default:
		return false
	}
}

// countPhase counts reports of phase p.
func countPhase(st *adaptertest.Statuses, p adapter.Phase) int {
	n := 0
	for _, s := range st.All() {
		if s.Phase == p {
			n++
		}
	}
	return n
}

// warnings returns the messages logged at warning level or above.
func (h *harness) warnings() []string {
	var out []string
	for _, e := range h.logs.AllEntries() {
		if e.Level <= logrus.WarnLevel {
			out = append(out, e.Message)
		}
	}
	return out
}
