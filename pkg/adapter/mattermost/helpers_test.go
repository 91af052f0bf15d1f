// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"context"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/mattermost/mattermosttest"
	"github.com/heraldgw/herald/pkg/secret"
)

// wait bounds every wait for something expected.
const wait = 10 * time.Second

// harness is one adapter on one fake.
type harness struct {
	fake    *mattermosttest.Server
	a       *Adapter
	inbox   *adaptertest.Inbox
	st      *adaptertest.Statuses
	metrics *adaptertest.Metrics
}

// newHarness builds an adapter on fake with stateDir (may be "") and
// short timings; edit changes the configuration.
func newHarness(t *testing.T, fake *mattermosttest.Server, stateDir string, edit func(*Config)) *harness {
	t.Helper()
	return newHarnessEnv(t, fake, func(env *adapter.Env) { env.StateDir = stateDir }, edit)
}

// newHarnessEnv is newHarness with setEnv choosing the Env's state
// directory and States.
func newHarnessEnv(t *testing.T, fake *mattermosttest.Server, setEnv func(*adapter.Env), edit func(*Config)) *harness {
	t.Helper()
	if fake == nil {
		fake = mattermosttest.New(t, mattermosttest.DefaultToken)
	}
	env, st, m := adaptertest.Env(t, TypeName)
	setEnv(&env)
	c := NewConfig()
	c.URL = fake.URL
	c.Token = adaptertest.SecretFile(t, "token", mattermosttest.DefaultToken)
	c.RequestTimeout = 2 * time.Second
	if edit != nil {
		edit(c)
	}
	a, err := New(c, env)
	if err != nil {
		t.Fatal(err)
	}
	a.backoff = adaptertest.FastBackoff
	h := &harness{fake: fake, a: a, inbox: &adaptertest.Inbox{}, st: st, metrics: m}
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	if err := h.a.Start(context.Background(), h.inbox); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = h.a.Stop(ctx)
}

// connected starts the adapter and waits until it is connected and the
// fake has its websocket.
func (h *harness) connected(t *testing.T) {
	t.Helper()
	h.start(t)
	h.st.WaitPhase(t, "connected", wait)
	h.fake.Wait(t, wait, "a websocket", func() bool { return h.fake.Connections() == 1 })
}

func mmBot() string { return mattermosttest.BotID }

func mustSecret(t *testing.T, v string) secret.Value {
	t.Helper()
	s, err := adaptertest.SecretFile(t, "tok", v).Read()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// eventually polls cond until it holds, failing the test after wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
