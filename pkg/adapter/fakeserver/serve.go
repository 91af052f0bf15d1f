// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// ListenFunc opens a listener: net.Listen, or the Listen of a sandbox, so
// that a fake serves herald in another network namespace.
type ListenFunc = func(network, address string) (net.Listener, error)

// Listen opens a TCP listener on 127.0.0.1 (a free port) with listen,
// failing t, the error named after the fake (name), when it cannot.
func Listen(t testing.TB, name string, listen ListenFunc) net.Listener {
	t.Helper()
	ln, err := listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%s: listen: %v", name, err)
	}
	return ln
}

// Serve starts conf (its handler and any hooks, such as ConnContext) as a
// plain HTTP test server on ln. The fake stops it with Stop.
func Serve(ln net.Listener, conf *http.Server) *httptest.Server {
	srv := &httptest.Server{Listener: ln, Config: conf}
	srv.Start()
	return srv
}

// Start serves h on a listener from listen (Listen, Serve) and stops it
// when t ends: first stop runs (the fake's own teardown, which releases
// whatever its handlers wait on; nil for none), then Stop.
func Start(t testing.TB, name string, listen ListenFunc, h http.Handler, stop func()) *httptest.Server {
	t.Helper()
	srv := Serve(Listen(t, name, listen), &http.Server{Handler: h})
	t.Cleanup(func() {
		if stop != nil {
			stop()
		}
		Stop(srv)
	})
	return srv
}

// Stop closes every client connection of srv, then srv, so that a client
// still connected (a long poll, a held answer) does not keep Close
// waiting. A handler that blocks on something else must be released
// before.
func Stop(srv *httptest.Server) {
	srv.CloseClientConnections()
	srv.Close()
}
