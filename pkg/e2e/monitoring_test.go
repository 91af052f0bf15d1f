// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// scrape GETs path from herald-metrics.socket's address in the sandbox.
func (e *env) scrape(path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:9469"+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestMetricsSocket: herald-metrics.socket is off until enabled; once
// enabled (with herald stopped: systemd refuses to start a socket whose
// service is active), herald takes it at its next start and serves /metrics there
// (404 for anything else); a scrape during a restart waits in the socket
// and is answered; a scrape while herald is stopped starts it.
func TestMetricsSocket(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.sh(`install -m 0644 ` + guestUnits + `/herald-metrics.socket /etc/systemd/system/herald-metrics.socket`)
	e.systemctl("daemon-reload")
	e.startReady()
	if _, _, err := e.scrape("/metrics"); err == nil {
		t.Fatal("port 9469 answers although herald-metrics.socket is not enabled")
	}
	if st := e.show("herald-metrics.socket", "UnitFileState")["UnitFileState"]; st != "disabled" {
		t.Fatalf("herald-metrics.socket UnitFileState %q, want disabled", st)
	}

	// The documented way to enable it (systemd refuses to start a socket
	// whose service runs).
	e.systemctl("enable", "herald-metrics.socket")
	e.systemctl("stop", "herald.service")
	e.systemctl("start", "herald-metrics.socket", "herald.service")
	e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, 30*time.Second)
	code, body, err := e.scrape("/metrics")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "herald_build_info{") {
		t.Fatalf("GET /metrics: %d %v\n%.300s", code, err, body)
	}
	// The metrics the alerts need are there under the unit's hardening
	// (ProcSubset=pid hides /proc/stat, so process_start_time_seconds is
	// not: the restart alert uses herald_start_time_seconds).
	for _, want := range []string{"\nherald_start_time_seconds ", "\nherald_store_size_bytes ", "\nherald_store_filesystem_avail_bytes ",
		"\nherald_config_last_reload_successful 1\n", `herald_adapter_state{platform="webhook",state="connected",type="webhook"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics under the unit lacks %q", strings.TrimSpace(want))
		}
	}
	for _, path := range []string{"/", "/status", "/healthz", "/reload"} {
		if code, _, err := e.scrape(path); err != nil || code != http.StatusNotFound {
			t.Errorf("GET %s: %d %v, want 404", path, code, err)
		}
	}
	if j := e.journalText("herald.service"); strings.Contains(j, "does not use") {
		t.Errorf("herald reported a passed socket unused:\n%s", j)
	}

	// A scrape sent while herald restarts waits in the socket's backlog.
	pid := e.mainPID()
	e.systemctl("--no-block", "restart", "herald.service")
	code, body, err = e.scrape("/metrics")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "herald_build_info{") {
		t.Fatalf("GET /metrics during a restart: %d %v", code, err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st := e.show("herald.service", "MainPID", "ActiveState", "SubState")
		if st["MainPID"] != pid && st["MainPID"] != "0" && st["ActiveState"] == "active" && st["SubState"] == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald.service did not restart within 30s: %v (pid before %s)", st, pid)
		}
	}

	// Stopped, herald is started by a scrape.
	e.systemctl("stop", "herald.service")
	code, body, err = e.scrape("/metrics")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "herald_build_info{") {
		t.Fatalf("GET /metrics with herald stopped: %d %v", code, err)
	}
	e.waitProps("herald.service", map[string]string{"ActiveState": "active"}, 30*time.Second)
}
