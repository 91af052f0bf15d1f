// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/secret"
)

const (
	// testSecret is a Standard Webhooks secret; GitHub-style senders use
	// the same text as their key.
	testSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherSecret = "whsec_dGhlIHdyb25nIGtleSB0aGUgd3Jvbmcga2V5"
	outSecret   = "whsec_b3V0Ym91bmQgc2lnbmluZyBrZXkgZm9yIHRlc3Rz"
)

// secretFile writes s to a file and returns a reference to it.
func secretFile(t testing.TB, s string) secret.Ref {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret.Ref{File: p}
}

// harness is an adapter mounted on a real loopback HTTP server, with the
// recorders behind its Env.
type harness struct {
	a        *webhook.Adapter
	inbox    *adaptertest.Inbox
	statuses *adaptertest.Statuses
	metrics  *adaptertest.Metrics
	logs     *logtest.Hook
	srv      *httptest.Server
	url      string // the inbound route
}

type harnessOpt func(*webhook.Config)

// newAdapter builds (but does not start) an adapter named "hooks" with
// testSecret, applying opts to the configuration.
func newAdapter(t testing.TB, opts ...harnessOpt) *harness {
	t.Helper()
	c := webhook.NewConfig()
	c.Secret = secretFile(t, testSecret)
	for _, o := range opts {
		o(c)
	}
	env, st, m := adaptertest.Env(t, "hooks")
	hook := logtest.NewLocal(env.Log.Logger)
	a, err := webhook.New(c, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	return &harness{a: a, inbox: &adaptertest.Inbox{}, statuses: st, metrics: m, logs: hook}
}

// start builds an adapter, mounts its routes on a loopback server and
// starts it.
func start(t testing.TB, opts ...harnessOpt) *harness {
	t.Helper()
	return mount(t, newAdapter(t, opts...))
}

// mount serves h's routes on a loopback server and starts the adapter.
func mount(t testing.TB, h *harness) *harness {
	t.Helper()
	h.srv = httptest.NewServer(adaptertest.Handler(t, h.a))
	t.Cleanup(h.srv.Close)
	h.url = h.srv.URL + h.a.Path()
	if err := h.a.Start(context.Background(), h.inbox); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return h
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func withConfig(f func(*webhook.Config)) harnessOpt { return f }

// rejections returns the Rejected counts of m for the labels the adapter
// uses.
func rejections(m *adaptertest.Metrics) map[string]int {
	out := map[string]int{}
	for _, l := range []string{webhook.RejectBadSignature, webhook.RejectMalformed, webhook.RejectTooLarge,
		webhook.RejectReplyURLDenied, webhook.RejectReadError} {
		if n := m.Rejections(l); n > 0 {
			out[l] = n
		}
	}
	return out
}

var _ adapter.Inbox = (*adaptertest.Inbox)(nil)

func secretRefZero() secret.Ref { return secret.Ref{} }

// adapterEnv is adaptertest.Env for the instance "hooks".
func adapterEnv(t testing.TB) (adapter.Env, *adaptertest.Statuses, *adaptertest.Metrics) {
	return adaptertest.Env(t, "hooks")
}
