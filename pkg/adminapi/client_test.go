// SPDX-License-Identifier: Apache-2.0

package adminapi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/heraldgw/herald/pkg/paths"
)

// TestAdminSocketPackagedConfig: with the packaged configuration file and
// no socket anywhere, the error names the packaged socket, not a path
// derived from the current directory.
func TestAdminSocketPackagedConfig(t *testing.T) {
	if _, err := os.Stat(paths.AdminSocket); err == nil {
		t.Skipf("%s exists on this machine", paths.AdminSocket)
	}
	t.Setenv("RUNTIME_DIRECTORY", "")
	t.Setenv("STATE_DIRECTORY", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	t.Chdir("/")
	if got := AdminSocketFor(nil, paths.ConfigFile); got != paths.AdminSocket {
		t.Errorf("AdminSocketFor(nil, %q) = %q, want %q", paths.ConfigFile, got, paths.AdminSocket)
	}
}

// A socket nobody listens on is a *NotRunningError for reload and the send
// client alike (the herald command exits 69 for it), naming the socket.
func TestNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ctx := context.Background()
	_, rerr := Reload(ctx, sock)
	_, serr := (&SendClient{Socket: sock}).Send(ctx, SendMessage{Platform: "x", Text: "hi"})
	for what, err := range map[string]error{"reload": rerr, "send": serr} {
		var nr *NotRunningError
		if !errors.As(err, &nr) || nr.Socket != sock {
			t.Errorf("%s: %v (%T), want a *NotRunningError for %s", what, err, err, sock)
		}
	}
}
