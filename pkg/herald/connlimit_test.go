// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// TestHTTPConnectionCap: with listen.max_connections open, a further
// connection is answered 503 and closed, logged and counted; closing one of
// the open connections frees its place.
func TestHTTPConnectionCap(t *testing.T) {
	dir := t.TempDir()
	p := start(t, writeConfig(t, testConfig{Dir: dir, MaxConns: 2}), startOpts{})
	addr := p.ready()

	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	// healthz asks GET /healthz on c, keeping it alive, and returns the
	// status, or an error if the connection was closed or reset instead.
	healthz := func(c net.Conn) (int, error) {
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: herald\r\n\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	// Two kept-alive connections hold both places.
	held := []net.Conn{dial(), dial()}
	for i, c := range held {
		if code, err := healthz(c); err != nil || code != http.StatusOK {
			t.Fatalf("connection %d: %d %v", i, code, err)
		}
	}

	// A third is refused. It sends nothing, so herald's close cannot reset
	// it before the answer is read.
	resp, err := http.ReadResponse(bufio.NewReader(dial()), nil)
	if err != nil {
		t.Fatalf("connection over the cap: %v, want a 503", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !resp.Close {
		t.Fatalf("connection over the cap: %s %v, want 503 with Retry-After and Connection: close", resp.Status, resp.Header)
	}
	p.waitLog(map[string]string{"msg": "HTTP connection refused", "max_connections": "2"}, 10*time.Second)
	if m := adminMetrics(t, dir); !strings.Contains(m, "herald_http_connections_refused_total 1\n") {
		t.Fatalf("refusal not counted:\n%s", grepLines(m, "herald_http_"))
	}

	// The held connections still work, and closing one frees its place
	// once herald has seen it closed.
	if code, err := healthz(held[1]); err != nil || code != http.StatusOK {
		t.Fatalf("held connection after the refusal: %d %v", code, err)
	}
	held[0].Close()
	var code int
	if !testwait.Until(testwait.Timeout, func() bool {
		code, err = healthz(dial())
		return err == nil && code == http.StatusOK
	}) {
		t.Fatalf("no place freed after closing a connection: %d %v", code, err)
	}
}

// adminMetrics returns the /metrics text of the herald whose state is dir.
func adminMetrics(t *testing.T, dir string) string {
	t.Helper()
	client := herald.AdminClient(filepath.Join(dir, "admin.sock"), 5*time.Second)
	resp, err := client.Get("http://herald/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return fmt.Sprint(out)
}
