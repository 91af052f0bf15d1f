// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"context"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/dingtalk/dingtalktest"
)

// wait bounds every wait for something expected.
const wait = 10 * time.Second

type harness struct {
	srv     *dingtalktest.Server
	a       *Adapter
	inbox   *adaptertest.Inbox
	st      *adaptertest.Statuses
	metrics *adaptertest.Metrics
}

// newHarness builds an adapter against a fresh fake; conf edits the
// configuration.
func newHarness(t *testing.T, conf func(*Config)) *harness {
	t.Helper()
	h := &harness{srv: dingtalktest.New(t, dingtalktest.Options{}), inbox: &adaptertest.Inbox{}}
	c := NewConfig()
	c.ClientID = dingtalktest.DefaultClientID
	c.ClientSecret = adaptertest.SecretFile(t, "client_secret", dingtalktest.DefaultClientSecret)
	c.APIURL = h.srv.URL
	c.OAPIURL = h.srv.URL
	if conf != nil {
		conf(c)
	}
	env, st, m := adaptertest.Env(t, TypeName)
	h.st, h.metrics = st, m
	a, err := New(c, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	a.backoff = adaptertest.FastBackoff
	h.a = a
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	return h
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	if err := h.a.Start(context.Background(), h.inbox); err != nil {
		t.Fatalf("Start: %v", err)
	}
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
}
