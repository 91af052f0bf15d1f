// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scrape sends method path to the metrics listener at addr and returns the
// status code and body.
func scrape(t *testing.T, method, addr, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// checkMetricsOnly: /metrics answers with herald's metrics; every other
// path and method is 404, so nothing of the admin endpoint leaks to TCP.
func checkMetricsOnly(t *testing.T, addr string) {
	t.Helper()
	code, body := scrape(t, http.MethodGet, addr, "/metrics")
	if code != http.StatusOK || !strings.Contains(body, "herald_build_info{") || !strings.Contains(body, "herald_start_time_seconds ") {
		t.Fatalf("GET /metrics: %d\n%.500s", code, body)
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/"}, {http.MethodGet, "/status"}, {http.MethodGet, "/healthz"},
		{http.MethodPost, "/reload"}, {http.MethodPost, "/metrics"}, {http.MethodGet, "/metrics/x"},
		{http.MethodGet, "/hooks/webhook"},
	} {
		if code, _ := scrape(t, c.method, addr, c.path); code != http.StatusNotFound {
			t.Errorf("%s %s: %d, want 404", c.method, c.path, code)
		}
	}
}

// TestMetricsListenerActivated: a socket passed as "metrics" (what
// herald-metrics.socket does) serves /metrics only, the configured
// fallback is not bound, and herald does not call the socket unused.
func TestMetricsListenerActivated(t *testing.T) {
	dir := t.TempDir()
	fallback := freePort(t)
	cfg := writeConfig(t, testConfig{Dir: dir, Metrics: fallback})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	p := start(t, cfg, startOpts{shim: true, files: []*os.File{f}, env: []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=metrics"}})
	e := p.waitLog(map[string]string{"msg": "herald ready"}, 30*time.Second)
	if got := fmt.Sprint(e["metrics"]); got != ln.Addr().String() {
		t.Fatalf("metrics listener %q, want the activated %s", got, ln.Addr())
	}
	checkMetricsOnly(t, ln.Addr().String())
	if c, err := net.DialTimeout("tcp", fallback, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("the fallback %s is bound although a socket was passed", fallback)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if out := p.output(); strings.Contains(out, "does not use") {
		t.Fatalf("the metrics socket was reported unused:\n%s", out)
	}
}

// TestMetricsListenerFallback: without a passed socket, listen.metrics is
// bound; without it either, there is no metrics listener at all.
func TestMetricsListenerFallback(t *testing.T) {
	addr := freePort(t)
	p := start(t, writeConfig(t, testConfig{Metrics: addr}), startOpts{})
	e := p.waitLog(map[string]string{"msg": "herald ready"}, 30*time.Second)
	if got := fmt.Sprint(e["metrics"]); got != addr {
		t.Fatalf("metrics listener %q, want %s", got, addr)
	}
	checkMetricsOnly(t, addr)
	p.signal(syscall.SIGTERM)
	p.wait(10 * time.Second)

	q := start(t, writeConfig(t, testConfig{}), startOpts{})
	e = q.waitLog(map[string]string{"msg": "herald ready"}, 30*time.Second)
	if got := fmt.Sprint(e["metrics"]); got != "" {
		t.Fatalf("metrics listener %q without socket or listen.metrics", got)
	}
	q.signal(syscall.SIGTERM)
	q.wait(10 * time.Second)
}
