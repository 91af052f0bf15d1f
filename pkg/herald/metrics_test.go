// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// TestAdminEndpoint checks the admin socket's endpoints on a running herald
// after a message went through: health, readiness, and the metrics with
// their labels as an operator scrapes them.
func TestAdminEndpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, testConfig{Dir: dir, Extra: "  down:\n    type: fault\n    allow_all: true\n    reconnecting: true\n"})
	p := start(t, cfg, startOpts{})
	addr := p.ready()
	// A message answered synchronously, and a malformed one.
	resp, err := http.Post("http://"+addr+"/hooks/webhook?wait=5s", "application/json", strings.NewReader(`{"conversation_id":"c","user_id":"u","text":"hi"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("post: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, _ = http.Post("http://"+addr+"/hooks/webhook", "application/json", strings.NewReader(`{not json`))
	resp.Body.Close()

	client := herald.AdminClient(filepath.Join(dir, "admin.sock"), 5*time.Second)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get("http://herald" + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	// One platform keeps reconnecting: alive, not ready.
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "down: reconnecting") {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	// The client has the reply when the adapter wrote it; the dispatcher
	// counts the delivery right after, so wait for that count (bounded)
	// before reading the rest.
	const delivered = `herald_outbound_messages_total{platform="webhook",result="delivered"} 1`
	var metrics string
	testwait.Until(testwait.Timeout, func() bool {
		var code int
		if code, metrics = get("/metrics"); code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		return strings.Contains(metrics, delivered)
	})
	for _, want := range []string{
		`herald_inbound_messages_total{platform="webhook",result="stored"} 1`,
		`herald_inbound_rejected_total{platform="webhook",reason="malformed"} 1`,
		delivered,
		`herald_turn_duration_seconds_count{platform="webhook",result="done"} 1`,
		`herald_agent_turns_total{result="ok"} 1`,
		`herald_adapter_up{platform="webhook",type="webhook"} 1`,
		`herald_adapter_up{platform="down",type="fault"} 0`,
		`herald_turns_in_flight 0`,
		`herald_queue_depth 0`,
		`herald_store_commit_batch_size_count`,
		`herald_build_info{version=`,
		`herald_adapter_state{platform="webhook",state="connected",type="webhook"} 1`,
		`herald_adapter_state{platform="webhook",state="reconnecting",type="webhook"} 0`,
		`herald_adapter_state{platform="down",state="reconnecting",type="fault"} 1`,
		`herald_start_time_seconds `,
		`herald_oldest_pending_reply_age_seconds 0`,
		`herald_watchdog_checks_failed_total 0`,
		`herald_store_size_bytes `,
		`herald_store_filesystem_avail_bytes `,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", metrics)
	}
}
