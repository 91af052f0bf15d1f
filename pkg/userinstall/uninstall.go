// SPDX-License-Identifier: Apache-2.0

package userinstall

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	userunits "github.com/heraldgw/herald/units/user"
)

// Uninstall stops and disables herald's user units and removes what
// Install put in place except the user's own files: the configuration
// directory (herald.yaml, credentials), the state directory and drop-ins
// in ~/.config/systemd/user/herald*.d stay, and Uninstall lists them.
func Uninstall(ctx context.Context, o Options) error {
	if err := o.resolve(); err != nil {
		return err
	}
	p := o.Paths
	say := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }

	installed := false
	for _, name := range userunits.Names() {
		if _, err := os.Stat(filepath.Join(p.UnitDir, name)); err == nil {
			installed = true
		}
	}
	if installed {
		// disable --now stops the service and the sockets and removes the
		// enablement links.
		if _, err := o.Systemctl(ctx, append([]string{"disable", "--now"}, Units...)...); err != nil {
			return fmt.Errorf("userinstall: %w", err)
		}
		say("stopped and disabled %s", strings.Join(Units, ", "))
	}
	var removeErr error
	remove := func(path string) {
		switch err := os.RemoveAll(path); {
		case err != nil:
			removeErr = errors.Join(removeErr, fmt.Errorf("userinstall: %w", err))
		default:
			say("removed %s", path)
		}
	}
	for _, name := range userunits.Names() {
		if path := filepath.Join(p.UnitDir, name); exists(path) {
			remove(path)
		}
	}
	if installed {
		if _, err := o.Systemctl(ctx, "daemon-reload"); err != nil {
			return fmt.Errorf("userinstall: %w", err)
		}
		// A failed unit stays loaded (and listed) until reset.
		_, _ = o.Systemctl(ctx, append([]string{"reset-failed"}, Units...)...)
	}
	// RuntimeDirectoryPreserve=yes keeps the admin socket's directory
	// after a stop.
	if p.RuntimeDir != "" && exists(p.RuntimeDir) {
		remove(p.RuntimeDir)
	}
	if exists(p.Bin) {
		remove(p.Bin)
	}
	if removeErr != nil {
		return removeErr
	}

	var kept []string
	for _, d := range []struct{ path, what string }{
		{p.ConfigDir, "your configuration and credentials"},
		{p.StateDir, "the state (message store)"},
	} {
		if exists(d.path) {
			kept = append(kept, fmt.Sprintf("  %s: %s", d.path, d.what))
		}
	}
	dropIns, _ := filepath.Glob(filepath.Join(p.UnitDir, "herald*.d"))
	for _, d := range dropIns {
		kept = append(kept, fmt.Sprintf("  %s: your drop-ins", d))
	}
	if len(kept) == 0 {
		say("herald is uninstalled; nothing of it is left")
		return nil
	}
	say("herald is uninstalled. Left in place, yours to keep or delete:\n%s", strings.Join(kept, "\n"))
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
