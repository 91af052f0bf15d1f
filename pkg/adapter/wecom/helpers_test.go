// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/wecom/wecomtest"
)

const wait = 10 * time.Second

// harness is one adapter against a fake.
type harness struct {
	t       testing.TB
	fake    *wecomtest.Fake
	a       *Adapter
	inbox   *adaptertest.Inbox
	st      *adaptertest.Statuses
	metrics *adaptertest.Metrics
	env     adapter.Env
}

// newHarness builds an adapter; edit may change the configuration first.
func newHarness(t testing.TB, edit func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, fake: wecomtest.New(t), inbox: &adaptertest.Inbox{}}
	h.env, h.st, h.metrics = adaptertest.Env(t, TypeName)
	conf := NewConfig()
	configure(t, conf, h.fake.URL)
	if edit != nil {
		edit(conf)
	}
	a, err := New(conf, h.env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.a = a
	t.Cleanup(func() { adaptertest.StopWithin(t, a) })
	return h
}

func (h *harness) start() *harness {
	h.t.Helper()
	if err := h.a.Start(context.Background(), h.inbox); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	return h
}

// post serves the callback cb and returns the answer.
func (h *harness) post(cb wecomtest.Callback) *httptest.ResponseRecorder {
	h.t.Helper()
	req, err := cb.Request(context.Background(), h.a.Path())
	if err != nil {
		h.t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.a.ServeHTTP(rec, req)
	return rec
}

// get serves a GET of the callback URL with query q.
func (h *harness) get(q url.Values) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.a.ServeHTTP(rec, httptest.NewRequest("GET", h.a.Path()+"?"+q.Encode(), nil))
	return rec
}
