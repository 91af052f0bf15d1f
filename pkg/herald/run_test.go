// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	_ "github.com/heraldgw/herald/pkg/adapter/webhook"
)

// TestRunLeavesNoGoroutine runs the whole lifecycle in-process, with a
// message through it, and checks that nothing Run started outlives it.
func TestRunLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	cfg := filepath.Join(dir, "herald.yaml")
	os.WriteFile(cfg, []byte(`state_dir: `+dir+`/state
listen: {http: 127.0.0.1:0}
admin: {socket: `+dir+`/admin.sock}
log: {level: error}
shutdown: {drain_timeout: 2s, adapter_timeout: 500ms}
platforms:
  webhook: {allow_all: true, insecure_no_signature: true}
  quiet: {type: webhook, allow_all: true, insecure_no_signature: true}
`), 0o600)
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfg, Stderr: devnull, OnListening: func(http, _ string) { addrs <- http }})
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("herald did not become ready")
	}
	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Post("http://"+addr+"/hooks/webhook?wait=5s", "application/json", strings.NewReader(`{"conversation_id":"c","user_id":"u","text":"hi"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("post: %v %v", resp, err)
	}
	resp.Body.Close()
	client.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
