// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// TestStartStopsWithTheTest: at the end of the test that started it, the
// fake's stop runs (releasing a handler that holds a request), then the
// server closes; a later request is refused.
func TestStartStopsWithTheTest(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	answered := make(chan error, 1)
	client := &http.Client{Timeout: 30 * time.Second}
	var url string
	stops := 0
	t.Run("fake", func(t *testing.T) {
		srv := Start(t, "fake", net.Listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
		}), func() {
			stops++
			close(release)
		})
		url = srv.URL
		go func() {
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
			}
			answered <- err
		}()
		select {
		case <-entered:
		case <-time.After(30 * time.Second):
			t.Fatal("the request never reached the handler")
		}
	})
	if stops != 1 {
		t.Fatalf("stop ran %d times, want 1", stops)
	}
	select {
	case <-answered:
	case <-time.After(30 * time.Second):
		t.Fatal("the held request did not end when the server stopped")
	}
	if resp, err := client.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("the server still answers after the test: HTTP %d", resp.StatusCode)
	}
}

// TestServeUsesTheConfig: Serve starts the given http.Server (its hooks
// included) on the given listener.
func TestServeUsesTheConfig(t *testing.T) {
	ln := Listen(t, "fake", net.Listen)
	hooked := make(chan struct{}, 1)
	srv := Serve(ln, &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				select {
				case hooked <- struct{}{}:
				default:
				}
			}
		},
	})
	defer Stop(srv)
	if srv.URL != "http://"+ln.Addr().String() {
		t.Fatalf("URL %s, listener %s", srv.URL, ln.Addr())
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	select {
	case <-hooked:
	default:
		t.Fatal("the server's ConnState hook never ran")
	}
}
