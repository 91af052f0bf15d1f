// SPDX-License-Identifier: Apache-2.0

package userinstall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	userunits "github.com/heraldgw/herald/units/user"
)

// Units are the user units, in the order they are enabled and started.
var Units = []string{"herald.socket", "herald-admin.socket", "herald.service"}

// LingerDir is where logind records the users with lingering on.
const LingerDir = "/var/lib/systemd/linger"

// SystemctlTimeout bounds each systemctl call. A start waits for READY=1,
// which the unit bounds by TimeoutStartSec=60s.
const SystemctlTimeout = 90 * time.Second

// Paths are the files and directories of a user installation.
type Paths struct {
	Bin            string // ~/.local/bin/herald (the units' ExecStart=)
	UnitDir        string // $XDG_CONFIG_HOME/systemd/user
	ConfigDir      string // $XDG_CONFIG_HOME/herald (ConfigurationDirectory=)
	ConfigFile     string // $XDG_CONFIG_HOME/herald/herald.yaml
	CredentialsDir string // $XDG_CONFIG_HOME/herald/credentials (LoadCredential=)
	StateDir       string // ~/.local/state/herald
	RuntimeDir     string // $XDG_RUNTIME_DIR/herald (RuntimeDirectory=); "" if unknown
}

// DefaultPaths returns the paths for the calling user, from $HOME,
// $XDG_CONFIG_HOME and $XDG_RUNTIME_DIR as the user manager sees them
// (its %h, %E and %t).
func DefaultPaths() (Paths, error) {
	home := os.Getenv("HOME")
	if home == "" {
		u, err := user.Current()
		if err != nil {
			return Paths{}, fmt.Errorf("userinstall: home directory: %w", err)
		}
		home = u.HomeDir
	}
	if home == "" || !filepath.IsAbs(home) {
		return Paths{}, fmt.Errorf("userinstall: home directory %q is not an absolute path", home)
	}
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" || !filepath.IsAbs(cfg) {
		cfg = filepath.Join(home, ".config")
	}
	p := Paths{
		Bin:            filepath.Join(home, ".local", "bin", "herald"),
		UnitDir:        filepath.Join(cfg, "systemd", "user"),
		ConfigDir:      filepath.Join(cfg, "herald"),
		ConfigFile:     filepath.Join(cfg, "herald", "herald.yaml"),
		CredentialsDir: filepath.Join(cfg, "herald", "credentials"),
		StateDir:       filepath.Join(home, ".local", "state", "herald"),
	}
	if rt := RuntimeDir(); rt != "" {
		p.RuntimeDir = filepath.Join(rt, "herald")
	}
	return p, nil
}

// RuntimeDir is $XDG_RUNTIME_DIR, else /run/user/UID if it exists (a
// shell from su or sudo may lack the variable), else "".
func RuntimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		return d
	}
	d := "/run/user/" + strconv.Itoa(os.Getuid())
	if fi, err := os.Stat(d); err == nil && fi.IsDir() {
		return d
	}
	return ""
}

// Options configure Install and Uninstall. Zero values take the calling
// user's defaults.
type Options struct {
	Out   io.Writer
	Paths *Paths // default DefaultPaths()
	// Executable is the binary to install; default os.Executable().
	Executable string
	// UserName names the user in messages and the linger check; default
	// $USER, else the account of the calling uid.
	UserName string
	// Systemctl runs `systemctl --user ARGS` and returns its combined
	// output; default the systemctl command, bounded by SystemctlTimeout.
	Systemctl func(ctx context.Context, args ...string) (string, error)
	// LingerDir is where lingering users are recorded; default LingerDir.
	LingerDir string
}

func (o *Options) resolve() error {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Paths == nil {
		p, err := DefaultPaths()
		if err != nil {
			return err
		}
		o.Paths = &p
	}
	if o.UserName == "" {
		o.UserName = os.Getenv("USER")
		if o.UserName == "" {
			if u, err := user.Current(); err == nil {
				o.UserName = u.Username
			}
		}
	}
	if o.Systemctl == nil {
		o.Systemctl = systemctl
	}
	if o.LingerDir == "" {
		o.LingerDir = LingerDir
	}
	return nil
}

// systemctl runs `systemctl --user`, with XDG_RUNTIME_DIR set when the
// caller's environment lacks it (systemctl finds the user manager there).
func systemctl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, SystemctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "systemctl", append([]string{"--user", "--no-pager"}, args...)...)
	cmd.Env = os.Environ()
	if os.Getenv("XDG_RUNTIME_DIR") == "" {
		if d := RuntimeDir(); d != "" {
			cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+d)
		}
	}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("systemctl --user %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// StarterConfig is the configuration Install writes when there is none.
const StarterConfig = `# herald's configuration for the user service (herald install --user).
# herald install --user never overwrites this file: your edits stay.
#
# As written here every platform is off and herald only answers
# GET /healthz on 127.0.0.1:8089 (herald.socket; another address or port
# goes in a drop-in, see the comment in ~/.config/systemd/user/herald.socket),
# with the built-in echo agent. Every key and its default is described in
# herald's example configuration (packaging/herald.yaml in its source,
# /etc/herald/herald.yaml where the herald package is installed).
#
# Secrets never appear in this file: put each in a file of
# ~/.config/herald/credentials (mode 0700) and name it here as
# {credential: NAME}; systemd passes the directory to herald at start.
#
# After an edit:
#   herald check-config --credentials-dir ~/.config/herald/credentials ~/.config/herald/herald.yaml
#   systemctl --user reload herald     (a new or changed secret: restart)
#
# The state (message store, lock) is in ~/.local/state/herald, given to
# herald by the unit; leave state_dir unset.

listen:
  http: 127.0.0.1:8089
`

// Install installs and starts herald for the calling user. See the
// package documentation.
func Install(ctx context.Context, o Options) error {
	if err := o.resolve(); err != nil {
		return err
	}
	p := o.Paths
	say := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }

	for _, d := range []struct {
		path string
		mode fs.FileMode
	}{
		{filepath.Dir(p.Bin), 0o755}, {p.UnitDir, 0o755}, {p.ConfigDir, 0o700},
		{p.CredentialsDir, 0o700}, {p.StateDir, 0o700},
	} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("userinstall: %w", err)
		}
	}

	binChanged, err := installBinary(o.Executable, p.Bin)
	if err != nil {
		return err
	}
	say("%s %s", verb(binChanged, "installed", "unchanged"), p.Bin)

	var unitsChanged, socketsChanged bool
	for _, name := range userunits.Names() {
		data, err := userunits.File(name)
		if err != nil {
			return fmt.Errorf("userinstall: %w", err)
		}
		changed, err := writeIfChanged(filepath.Join(p.UnitDir, name), data, 0o644)
		if err != nil {
			return err
		}
		unitsChanged = unitsChanged || changed
		socketsChanged = socketsChanged || changed && strings.HasSuffix(name, ".socket")
		say("%s %s", verb(changed, "wrote", "unchanged"), filepath.Join(p.UnitDir, name))
	}

	switch _, err := os.Stat(p.ConfigFile); {
	case err == nil:
		say("kept your configuration %s", p.ConfigFile)
	case errors.Is(err, fs.ErrNotExist):
		if err := writeNew(p.ConfigFile, []byte(StarterConfig), 0o600); err != nil {
			return err
		}
		say("wrote the starter configuration %s", p.ConfigFile)
	default:
		return fmt.Errorf("userinstall: %w", err)
	}

	if _, err := o.Systemctl(ctx, "daemon-reload"); err != nil {
		return fmt.Errorf("userinstall: no user service manager to talk to (log in through a session, or ask root for `loginctl enable-linger %s`): %w", o.UserName, err)
	}
	if _, err := o.Systemctl(ctx, append([]string{"enable"}, Units...)...); err != nil {
		return fmt.Errorf("userinstall: %w", err)
	}
	// A changed socket unit takes effect only when the socket is
	// restarted, which refuses connections for a moment; a changed binary
	// or service unit needs only the service restarted (the sockets keep
	// queueing). Units already as they should be are just started.
	steps := [][]string{append([]string{"start"}, Units...)}
	switch {
	case socketsChanged:
		steps = [][]string{append([]string{"restart"}, Units...)}
	case binChanged || unitsChanged:
		steps = [][]string{append([]string{"start"}, Units[:2]...), {"restart", "herald.service"}}
	}
	for _, args := range steps {
		if _, err := o.Systemctl(ctx, args...); err != nil {
			return fmt.Errorf("userinstall: starting herald (journalctl --user -xeu herald.service says why; "+
				"if herald.socket failed, 127.0.0.1:8089 is taken, perhaps by the system service: the comment in %s says how a drop-in moves it): %w",
				filepath.Join(p.UnitDir, "herald.socket"), err)
		}
	}
	say("enabled and started %s (systemctl --user status herald)", strings.Join(Units, ", "))

	if on, err := Linger(o.LingerDir, o.UserName); err == nil && on {
		say("lingering is on for %s: herald keeps running after you log out and starts at boot", o.UserName)
	} else {
		say("herald runs only while %s is logged in. To keep it running after you log out and start it at boot:\n  loginctl enable-linger %s", o.UserName, o.UserName)
	}
	return nil
}

// Linger reports whether lingering is on for user: logind keeps a file
// per lingering user in dir (LingerDir).
func Linger(dir, user string) (bool, error) {
	if user == "" {
		return false, errors.New("userinstall: linger: no user name")
	}
	_, err := os.Stat(filepath.Join(dir, user))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("userinstall: linger: %w", err)
	}
}

func verb(changed bool, yes, no string) string {
	if changed {
		return yes
	}
	return no
}

// installBinary copies src (default: this executable) to dst unless dst
// already has the same content. It replaces dst by rename, so a running
// copy keeps its file.
func installBinary(src, dst string) (bool, error) {
	if src == "" {
		exe, err := os.Executable()
		if err != nil {
			return false, fmt.Errorf("userinstall: this executable: %w", err)
		}
		src = exe
	}
	si, err := os.Stat(src)
	if err != nil {
		return false, fmt.Errorf("userinstall: %w", err)
	}
	if di, err := os.Stat(dst); err == nil && os.SameFile(si, di) {
		return false, nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("userinstall: %w", err)
	}
	return writeIfChanged(dst, data, 0o755)
}

// writeIfChanged writes data to path (through a temporary file and a
// rename) unless path already holds exactly data with mode perm.
func writeIfChanged(path string, data []byte, perm fs.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() == perm {
			return false, nil
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return false, fmt.Errorf("userinstall: %w", err)
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(perm)
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return false, fmt.Errorf("userinstall: writing %s: %w", path, werr)
	}
	return true, nil
}

// writeNew creates path with data; it never replaces an existing file.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("userinstall: %w", err)
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return fmt.Errorf("userinstall: writing %s: %w", path, werr)
	}
	return nil
}
