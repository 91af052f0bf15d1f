// SPDX-License-Identifier: Apache-2.0

package userinstall

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	userunits "github.com/heraldgw/herald/units/user"
)

// fixture is a home directory in a temporary directory and a recorder in
// place of systemctl. The real user manager is exercised by the e2e test
// (pkg/e2e TestUserManager); these tests cover the files and the choice of
// systemctl commands.
type fixture struct {
	t     *testing.T
	home  string
	paths Paths
	exe   string
	calls [][]string
	out   bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	home := t.TempDir()
	f := &fixture{t: t, home: home, exe: filepath.Join(t.TempDir(), "herald-build")}
	f.paths = Paths{
		Bin:            filepath.Join(home, ".local/bin/herald"),
		UnitDir:        filepath.Join(home, ".config/systemd/user"),
		ConfigDir:      filepath.Join(home, ".config/herald"),
		ConfigFile:     filepath.Join(home, ".config/herald/herald.yaml"),
		CredentialsDir: filepath.Join(home, ".config/herald/credentials"),
		StateDir:       filepath.Join(home, ".local/state/herald"),
		RuntimeDir:     filepath.Join(home, "run/herald"),
	}
	f.writeExe("binary v1")
	if err := os.MkdirAll(filepath.Join(home, "linger"), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) writeExe(content string) {
	if err := os.WriteFile(f.exe, []byte(content), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) opts() Options {
	f.calls = nil
	f.out.Reset()
	return Options{
		Out: &f.out, Paths: &f.paths, Executable: f.exe, UserName: "alice",
		LingerDir: filepath.Join(f.home, "linger"),
		Systemctl: func(_ context.Context, args ...string) (string, error) {
			f.calls = append(f.calls, args)
			return "", nil
		},
	}
}

func (f *fixture) install() {
	f.t.Helper()
	if err := Install(context.Background(), f.opts()); err != nil {
		f.t.Fatalf("Install: %v\n%s", err, f.out.String())
	}
}

func (f *fixture) read(path string) string {
	f.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

func (f *fixture) wantCalls(want ...string) {
	f.t.Helper()
	var got []string
	for _, c := range f.calls {
		got = append(got, strings.Join(c, " "))
	}
	if !slices.Equal(got, want) {
		f.t.Fatalf("systemctl --user calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestInstallFresh(t *testing.T) {
	f := newFixture(t)
	f.install()
	for _, name := range userunits.Names() {
		want, _ := userunits.File(name)
		if got := f.read(filepath.Join(f.paths.UnitDir, name)); got != string(want) {
			t.Errorf("%s differs from the embedded unit", name)
		}
	}
	if got := f.read(f.paths.Bin); got != "binary v1" {
		t.Errorf("binary: %q", got)
	}
	if m := mode(t, f.paths.Bin); m != 0o755 {
		t.Errorf("binary mode %04o", m)
	}
	if got := f.read(f.paths.ConfigFile); got != StarterConfig {
		t.Errorf("config: %q", got)
	}
	for path, want := range map[string]os.FileMode{f.paths.ConfigFile: 0o600, f.paths.CredentialsDir: 0o700, f.paths.StateDir: 0o700} {
		if m := mode(t, path); m != want {
			t.Errorf("%s: mode %04o, want %04o", path, m, want)
		}
	}
	// First install: every unit is new, the sockets included.
	f.wantCalls("daemon-reload", "enable herald.socket herald-admin.socket herald.service",
		"restart herald.socket herald-admin.socket herald.service")
	if !strings.Contains(f.out.String(), "loginctl enable-linger alice") {
		t.Errorf("no linger advice without lingering:\n%s", f.out.String())
	}
}

// A second install keeps the user's configuration and, with nothing
// changed, only makes sure the units run.
func TestInstallAgainKeepsEdits(t *testing.T) {
	f := newFixture(t)
	f.install()
	edited := "listen:\n  http: 127.0.0.1:9000\n# mine\n"
	if err := os.WriteFile(f.paths.ConfigFile, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	f.install()
	if got := f.read(f.paths.ConfigFile); got != edited {
		t.Fatalf("the second install changed the configuration to %q", got)
	}
	if !strings.Contains(f.out.String(), "kept your configuration") {
		t.Errorf("output does not say the configuration was kept:\n%s", f.out.String())
	}
	f.wantCalls("daemon-reload", "enable herald.socket herald-admin.socket herald.service",
		"start herald.socket herald-admin.socket herald.service")
}

// A new binary restarts the service only: the sockets keep queueing.
func TestInstallNewBinaryRestartsService(t *testing.T) {
	f := newFixture(t)
	f.install()
	f.writeExe("binary v2")
	f.install()
	if got := f.read(f.paths.Bin); got != "binary v2" {
		t.Fatalf("binary not replaced: %q", got)
	}
	f.wantCalls("daemon-reload", "enable herald.socket herald-admin.socket herald.service",
		"start herald.socket herald-admin.socket", "restart herald.service")
}

// A unit file edited in place is put back (edits belong in drop-ins), and
// a changed socket unit restarts the sockets.
func TestInstallRestoresUnits(t *testing.T) {
	f := newFixture(t)
	f.install()
	sock := filepath.Join(f.paths.UnitDir, "herald.socket")
	if err := os.WriteFile(sock, []byte("[Socket]\nListenStream=0.0.0.0:80\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.install()
	want, _ := userunits.File("herald.socket")
	if got := f.read(sock); got != string(want) {
		t.Fatalf("herald.socket not restored: %q", got)
	}
	f.wantCalls("daemon-reload", "enable herald.socket herald-admin.socket herald.service",
		"restart herald.socket herald-admin.socket herald.service")
}

func TestInstallSaysLingerIsOn(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(filepath.Join(f.home, "linger", "alice"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.install()
	if out := f.out.String(); !strings.Contains(out, "lingering is on for alice") || strings.Contains(out, "loginctl enable-linger") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestUninstallKeepsUserFiles(t *testing.T) {
	f := newFixture(t)
	f.install()
	dropIn := filepath.Join(f.paths.UnitDir, "herald.socket.d")
	if err := os.MkdirAll(dropIn, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dropIn, "listen.conf"), []byte("[Socket]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(f.paths.RuntimeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Uninstall(context.Background(), f.opts()); err != nil {
		t.Fatalf("Uninstall: %v\n%s", err, f.out.String())
	}
	f.wantCalls("disable --now herald.socket herald-admin.socket herald.service", "daemon-reload",
		"reset-failed herald.socket herald-admin.socket herald.service")
	for _, gone := range []string{f.paths.Bin, f.paths.RuntimeDir,
		filepath.Join(f.paths.UnitDir, "herald.service"), filepath.Join(f.paths.UnitDir, "herald.socket"),
		filepath.Join(f.paths.UnitDir, "herald-admin.socket")} {
		if exists(gone) {
			t.Errorf("%s is left", gone)
		}
	}
	out := f.out.String()
	for _, kept := range []string{f.paths.ConfigFile, f.paths.CredentialsDir, f.paths.StateDir, dropIn} {
		if !exists(kept) {
			t.Errorf("%s was removed", kept)
		}
	}
	for _, said := range []string{f.paths.ConfigDir, f.paths.StateDir, dropIn} {
		if !strings.Contains(out, said) {
			t.Errorf("output does not name %s as left in place:\n%s", said, out)
		}
	}
	// Nothing installed: no systemctl call, nothing to say but that.
	if err := os.RemoveAll(f.home); err != nil {
		t.Fatal(err)
	}
	if err := Uninstall(context.Background(), f.opts()); err != nil {
		t.Fatal(err)
	}
	f.wantCalls()
	if !strings.Contains(f.out.String(), "nothing of it is left") {
		t.Fatalf("output:\n%s", f.out.String())
	}
}

// A start that fails (herald.socket cannot bind a port the system service
// holds) says where to look and how to move the port.
func TestInstallStartFails(t *testing.T) {
	f := newFixture(t)
	o := f.opts()
	o.Systemctl = func(_ context.Context, args ...string) (string, error) {
		if args[0] == "restart" {
			return "", errors.New("Job for herald.socket failed.")
		}
		return "", nil
	}
	err := Install(context.Background(), o)
	if err == nil {
		t.Fatal("Install succeeded although the start failed")
	}
	for _, want := range []string{"journalctl --user -xeu herald.service", filepath.Join(f.paths.UnitDir, "herald.socket"), "Job for herald.socket failed."} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}
