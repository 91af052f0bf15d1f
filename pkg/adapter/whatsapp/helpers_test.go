// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/whatsapp/whatsapptest"
)

const (
	wait = 10 * time.Second
	ann  = "4915550001"
)

// harness is one started adapter against a fake.
type harness struct {
	t       testing.TB
	fake    *whatsapptest.Fake
	a       *Adapter
	inbox   *adaptertest.Inbox
	st      *adaptertest.Statuses
	metrics *adaptertest.Metrics
	env     adapter.Env
	conf    *Config
}

// newHarness builds and starts an adapter; edit may change the
// configuration first, stateDir may be "" (memory only).
func newHarness(t testing.TB, stateDir string, edit func(*Config)) *harness {
	t.Helper()
	return newHarnessFake(t, whatsapptest.New(t), stateDir, edit)
}

func newHarnessFake(t testing.TB, fake *whatsapptest.Fake, stateDir string, edit func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, fake: fake, inbox: &adaptertest.Inbox{}}
	h.env, h.st, h.metrics = adaptertest.Env(t, TypeName)
	h.env.StateDir = stateDir
	h.conf = NewConfig()
	configure(t, h.conf, fake.URL)
	if edit != nil {
		edit(h.conf)
	}
	a, err := New(h.conf, h.env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.a = a
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	return h
}

func (h *harness) start() *harness {
	h.t.Helper()
	if err := h.a.Start(context.Background(), h.inbox); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	return h
}

// post sends body to the callback, signed with secret ("" unsigned), and
// returns the answer.
func (h *harness) post(body []byte, secret string) *httptest.ResponseRecorder {
	h.t.Helper()
	req, err := whatsapptest.NewRequest(context.Background(), h.a.Path(), secret, body)
	if err != nil {
		h.t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.a.ServeHTTP(rec, req)
	return rec
}

// deliver posts a signed notification and requires 200.
func (h *harness) deliver(body []byte) {
	h.t.Helper()
	if rec := h.post(body, h.fake.AppSecret); rec.Code != http.StatusOK {
		h.t.Fatalf("POST: %d %s", rec.Code, strings.TrimSpace(rec.Body.String()))
	}
}

// get performs a GET on the callback with the raw query.
func (h *harness) get(query string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, h.a.Path()+"?"+query, nil)
	rec := httptest.NewRecorder()
	h.a.ServeHTTP(rec, req)
	return rec
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func adaptertestStop(t *testing.T, h *harness) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := h.a.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}
