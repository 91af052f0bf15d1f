// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestFaultsSchedule(t *testing.T) {
	var fs Faults
	const p = Point("post")
	if _, ok := fs.Take(p); ok {
		t.Fatal("a fault at an empty point")
	}
	fs.Inject(p, Reject(503).Times(2))
	fs.Inject(p, Blackhole())
	want := []Kind{KindReject, KindReject, KindBlackhole, KindBlackhole}
	for i, k := range want {
		f, ok := fs.Take(p)
		if !ok || f.Kind != k {
			t.Fatalf("request %d: %v %v, want %v", i, f, ok, k)
		}
	}
	if _, ok := fs.TakeIf(p, KindReject, KindRateLimit); ok {
		t.Fatal("TakeIf took a fault of another kind")
	}
	if f, ok := fs.TakeIf(p, KindBlackhole); !ok || f.Kind != KindBlackhole {
		t.Fatalf("TakeIf(KindBlackhole) = %v %v", f, ok)
	}
	fs.Heal(p)
	if _, ok := fs.Take(p); ok {
		t.Fatal("Heal left a fault")
	}
	if f := RateLimit(1, 2*time.Second); f.N != 1 || f.Status != 429 || f.RetryAfter != 2*time.Second {
		t.Fatalf("RateLimit = %+v", f)
	}
	if s := Reject(200).WithCode("invalid_auth").Times(1).String(); s != "reject 200 invalid_auth ×1" {
		t.Fatalf("String = %q", s)
	}
}

func TestHoldAndDrop(t *testing.T) {
	done := make(chan struct{})
	entered := make(chan struct{}, 2)
	held := make(chan struct{}, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/drop" {
			DropConn(w)
			return
		}
		entered <- struct{}{}
		Hold(r, done)
		held <- struct{}{}
	}))
	defer srv.Close()

	if resp, err := http.Get(srv.URL + "/drop"); err == nil {
		resp.Body.Close()
		t.Fatalf("a dropped request was answered %d", resp.StatusCode)
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/hole", strings.NewReader("body"))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		errc <- err
	}()
	// The request is held until its client gives up.
	<-entered
	select {
	case err := <-errc:
		t.Fatalf("a black-holed request ended before its client gave up: %v", err)
	case <-held:
		t.Fatal("Hold returned before its client gave up")
	default:
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a black-holed request was answered")
	}
	<-held

	// Or until the fake closes.
	go func() {
		resp, err := http.Post(srv.URL+"/hole", "text/plain", strings.NewReader("body"))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-entered
	close(done)
	<-held
	<-errc
}
