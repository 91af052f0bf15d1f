// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/heraldgw/herald/pkg/paths"
	"github.com/heraldgw/herald/pkg/systemd/unitstate"
	"github.com/heraldgw/herald/pkg/userinstall"
)

// findManager picks the user service manager when herald's unit is not
// installed in the system manager but is in the calling user's (`herald
// install --user`), so that status and doctor find a user instance without
// --user. A system instance always wins.
func (o *InspectOptions) findManager(ctx context.Context) {
	if o.User {
		return
	}
	unit := o.Unit
	if unit == "" {
		unit = "herald.service"
	}
	ctx, cancel := context.WithTimeout(ctx, unitstate.DefaultTimeout)
	defer cancel()
	if us, err := unitstate.Describe(ctx, unit, false); err == nil && us.LoadState == "loaded" {
		return
	}
	if us, err := unitstate.Describe(ctx, unit, true); err == nil && us.LoadState == "loaded" {
		o.User = true
	}
}

// userDefaults sets the configuration file and credentials directory of a
// user installation where the options leave them open.
func (o *InspectOptions) userDefaults() {
	p, err := userinstall.DefaultPaths()
	if err != nil {
		return
	}
	if o.ConfigPath == "" {
		if _, err := os.Stat(p.ConfigFile); err == nil {
			o.ConfigPath = p.ConfigFile
		}
	}
	if o.CredentialsDir == "" {
		o.CredentialsDir = p.CredentialsDir
	}
}

// forUserManager rewrites doctor's advice, written for the system
// service, for the user service: `systemctl --user`, `journalctl --user`,
// and the user installation's paths.
func forUserManager(checks []Check) []Check {
	p, err := userinstall.DefaultPaths()
	if err != nil {
		return checks
	}
	r := strings.NewReplacer(
		"systemctl --user ", "systemctl --user ",
		"journalctl --user ", "journalctl --user ",
		"systemctl ", "systemctl --user ",
		"journalctl ", "journalctl --user ",
		paths.CredentialsDir, p.CredentialsDir,
		paths.StateDir, p.StateDir,
		paths.ConfigFile, p.ConfigFile,
		"install the herald package (it ships", "run herald install --user (it writes",
	)
	for i := range checks {
		checks[i].Fix = r.Replace(checks[i].Fix)
	}
	return checks
}

// lingerCheck says whether the user manager, and herald with it, runs
// while the user is logged out and starts at boot.
func lingerCheck() Check {
	name := os.Getenv("USER")
	on, err := userinstall.Linger(userinstall.LingerDir, name)
	switch {
	case err != nil:
		return Check{"linger", "SKIP", err.Error(), ""}
	case on:
		return Check{"linger", "PASS", fmt.Sprintf("on for %s: herald runs while you are logged out and starts at boot", name), ""}
	default:
		return Check{"linger", "WARN", fmt.Sprintf("off for %s: herald stops when your last session ends and does not start at boot", name),
			"loginctl enable-linger " + name}
	}
}

// userStateSuffix ends the user service's state directory
// (~/.local/state/herald, the user unit's STATE_DIRECTORY).
const userStateSuffix = "/.local/state/herald"

// checkStateDirScope keeps the system service and a user service from
// sharing a state directory (a message store, an instance lock): a user
// service may not use the system one, the system service no user one. A
// herald not run by systemd may use either (for example to inspect a
// copy); the directory's lock still excludes a running instance.
func checkStateDirScope(scope unitstate.Scope, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil // the lock reports an unusable directory
	}
	switch {
	case scope == unitstate.User && (abs == paths.StateDir || strings.HasPrefix(abs, paths.StateDir+"/")):
		return fmt.Errorf("state_dir %s belongs to the system service (herald.service of the system manager); a user service keeps its state in ~%s: leave state_dir unset", abs, userStateSuffix)
	case scope == unitstate.System && strings.HasSuffix(abs, userStateSuffix):
		return fmt.Errorf("state_dir %s is a user service's state directory; the system service keeps its state in %s: leave state_dir unset", abs, paths.StateDir)
	}
	return nil
}

// credentialsDirFor is where LoadCredential= reads the secrets of the
// herald listening on socket: the user installation's credentials
// directory for the user service's admin socket ($XDG_RUNTIME_DIR/herald),
// else paths.CredentialsDir.
func credentialsDirFor(socket string) string {
	if p, err := userinstall.DefaultPaths(); err == nil && p.RuntimeDir != "" && filepath.Dir(socket) == p.RuntimeDir {
		return p.CredentialsDir
	}
	return paths.CredentialsDir
}
