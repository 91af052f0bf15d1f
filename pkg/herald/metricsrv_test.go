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

	"github.com/heraldgw/herald/pkg/testsupport/testnet"
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
// fallback is not bound (it is a port held by a socket that does not
// listen: binding it would fail herald's start), and herald does not call
// the socket unused.
func TestMetricsListenerActivated(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, testConfig{Dir: dir, Metrics: testnet.RefusedAddr(t)})
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

// TestWatchdogNearMissCounted: when the liveness check fails (here the
// main loop is wedged), each withheld keepalive is counted in
// herald_watchdog_checks_failed_total, readable while it happens. No
// systemd runs here, so nothing aborts herald; the test kills it.
func TestWatchdogNearMissCounted(t *testing.T) {
	addr := freePort(t)
	cfg := writeConfig(t, testConfig{Metrics: addr, Top: "fault:\n  wedge_main_loop_after: 300ms\n"})
	p := start(t, cfg, startOpts{env: []string{"WATCHDOG_USEC=1000000"}})
	p.ready()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := scrape(t, http.MethodGet, addr, "/metrics")
		if strings.Contains(body, "herald_watchdog_checks_failed_total ") &&
			!strings.Contains(body, "herald_watchdog_checks_failed_total 0\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no withheld keepalive counted within 30s:\n%s", linesWithPrefix(body, "herald_watchdog"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
}

// linesWithPrefix returns the lines of s starting with prefix.
func linesWithPrefix(s, prefix string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestLastReloadGauge: a rejected reload sets
// herald_config_last_reload_successful to 0 (the alert HeraldReloadRejected
// fires on it), an accepted one back to 1.
func TestLastReloadGauge(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	tc := testConfig{Dir: dir, Metrics: addr}
	cfg := writeConfig(t, tc)
	p := start(t, cfg, startOpts{})
	p.ready()
	gauge := func() string {
		_, body := scrape(t, http.MethodGet, addr, "/metrics")
		return linesWithPrefix(body, "herald_config_last_reload_successful ")
	}
	if g := gauge(); g != "herald_config_last_reload_successful 1" {
		t.Fatalf("at start: %q", g)
	}
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(good, []byte("no_such_key: 1\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	p.waitLog(map[string]string{"msg": "reload rejected"}, 30*time.Second)
	if g := gauge(); g != "herald_config_last_reload_successful 0" {
		t.Fatalf("after a rejected reload: %q", g)
	}
	if err := os.WriteFile(cfg, good, 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	p.waitLog(map[string]string{"msg": "reload accepted"}, 30*time.Second)
	if g := gauge(); g != "herald_config_last_reload_successful 1" {
		t.Fatalf("after an accepted reload: %q", g)
	}
	p.signal(syscall.SIGTERM)
	p.wait(10 * time.Second)
}
