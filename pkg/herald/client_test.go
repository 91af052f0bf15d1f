// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/paths"
)

// listenUnix creates a unix socket at path, which must not exist.
func listenUnix(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

// TestAdminSocket checks how a command run by hand finds the running
// herald's admin socket, and that reload, status and doctor agree on it.
// A command run by hand lacks the service's $RUNTIME_DIRECTORY, so the
// configuration's default admin.socket there points elsewhere (once
// /.herald/admin.sock, making `herald reload` report a running herald as
// not running); the socket is then found where the service manager put it.
func TestAdminSocket(t *testing.T) {
	// Not /etc/herald/herald.yaml nor /run/herald/admin.sock: those are the
	// host's. The user manager's runtime directory stands for the place
	// where the service manager put the socket.
	for _, tc := range []struct {
		name string
		// config is the file's admin section ("" for none); the
		// placeholders @dir and @xdg are the test's directories.
		config string
		listen []string // sockets that exist
		file   []string // regular files that exist (not sockets)
		want   string
	}{
		{"service socket found without the service's environment", "", []string{"@xdg/herald/admin.sock"}, nil, "@xdg/herald/admin.sock"},
		{"configured socket wins", "admin:\n  socket: @dir/my.sock\n", []string{"@dir/my.sock", "@xdg/herald/admin.sock"}, nil, "@dir/my.sock"},
		{"configured socket absent, service socket present", "admin:\n  socket: @dir/my.sock\n", []string{"@xdg/herald/admin.sock"}, nil, "@xdg/herald/admin.sock"},
		{"state directory socket of a foreground herald", "state_dir: @dir/state\n", []string{"@dir/state/admin.sock"}, nil, "@dir/state/admin.sock"},
		{"a regular file is not a socket", "admin:\n  socket: @dir/my.sock\n", []string{"@xdg/herald/admin.sock"}, []string{"@dir/my.sock"}, "@xdg/herald/admin.sock"},
		{"none: the configured path is named", "admin:\n  socket: @dir/my.sock\n", nil, nil, "@dir/my.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, xdg := t.TempDir(), t.TempDir()
			expand := strings.NewReplacer("@dir", dir, "@xdg", xdg).Replace
			t.Setenv("RUNTIME_DIRECTORY", "")
			t.Setenv("STATE_DIRECTORY", "")
			t.Setenv("XDG_RUNTIME_DIR", xdg)
			t.Chdir(dir)
			cfg := filepath.Join(dir, "herald.yaml")
			if err := os.WriteFile(cfg, []byte(expand(tc.config)), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, p := range tc.listen {
				listenUnix(t, expand(p))
			}
			for _, p := range tc.file {
				if err := os.WriteFile(expand(p), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			want := expand(tc.want)
			if got := AdminSocket(cfg); got != want {
				t.Errorf("AdminSocket(%q) = %q, want %q", cfg, got, want)
			}
			o := InspectOptions{ConfigPath: cfg}
			if _, err := o.resolve(); err != nil {
				t.Fatal(err)
			}
			if o.AdminSocket != want {
				t.Errorf("status and doctor use %q, reload %q", o.AdminSocket, want)
			}
		})
	}
}

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
	if got := adminSocketFor(nil, paths.ConfigFile); got != paths.AdminSocket {
		t.Errorf("adminSocketFor(nil, %q) = %q, want %q", paths.ConfigFile, got, paths.AdminSocket)
	}
}
