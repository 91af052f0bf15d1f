// SPDX-License-Identifier: Apache-2.0

//go:build !heraldtest

package herald

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProductionBuildRefusesFaultInjection: without the heraldtest tag a
// configuration asking for the main-loop wedge is a configuration error
// (exit 78 before READY=1), not a hook silently ignored.
func TestProductionBuildRefusesFaultInjection(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(cfg, []byte(`state_dir: `+dir+`/state
listen: {http: 127.0.0.1:0}
admin: {socket: `+dir+`/admin.sock}
log: {level: error}
fault: {wedge_main_loop_after: 1s}
platforms:
  webhook: {allow_all: true, insecure_no_signature: true}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Run(ctx, Options{ConfigPath: cfg, Stderr: devnull})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != ExitConfig {
		t.Fatalf("Run = %v, want an exit %d", err, ExitConfig)
	}
	if !strings.Contains(err.Error(), "fault.wedge_main_loop_after") || !strings.Contains(err.Error(), "heraldtest") {
		t.Errorf("error %q does not name the key and the test build", err)
	}
}
