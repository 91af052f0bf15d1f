// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/paths"
	"github.com/heraldgw/herald/pkg/systemd/unitstate"
	"github.com/heraldgw/herald/pkg/systemd/unitstate/unitstatetest"
)

// status and doctor pick the user manager by themselves when herald's unit
// is installed there and not in the system manager.
func TestFindManager(t *testing.T) {
	sysBus := unitstatetest.StartBus(t, "")
	system := unitstatetest.NewSystemd(t, sysBus)
	userBus := unitstatetest.StartBus(t, "")
	user := unitstatetest.NewSystemd(t, userBus)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", sysBus.Address())
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", userBus.Address())

	find := func() bool {
		var o InspectOptions
		o.findManager(context.Background())
		return o.User
	}
	if find() {
		t.Fatal("neither manager has herald.service: picked the user manager")
	}
	user.SetUnit(unitstatetest.Unit{Name: "herald.service"})
	if !find() {
		t.Fatal("only the user manager has herald.service: not picked")
	}
	system.SetUnit(unitstatetest.Unit{Name: "herald.service", ActiveState: "inactive", SubState: "dead"})
	if find() {
		t.Fatal("the system manager has herald.service too: the user manager was picked")
	}
	o := InspectOptions{User: true}
	o.findManager(context.Background())
	if !o.User {
		t.Fatal("--user was overridden")
	}
}

func TestForUserManager(t *testing.T) {
	t.Setenv("HOME", "/home/alice")
	t.Setenv("XDG_CONFIG_HOME", "")
	got := forUserManager([]Check{
		{Fix: "systemctl reset-failed herald.service herald.socket && systemctl start herald.socket"},
		{Fix: "see journalctl -xu herald.service; systemctl --user status herald"},
		{Fix: "install -d -m 0700 /etc/herald/credentials"},
		{Fix: "move /var/lib/herald/herald.db* away; herald check-config /etc/herald/herald.yaml"},
		{Fix: "install the herald package (it ships herald.service)"},
	})
	want := []string{
		"systemctl --user reset-failed herald.service herald.socket && systemctl --user start herald.socket",
		"see journalctl --user -xu herald.service; systemctl --user status herald",
		"install -d -m 0700 /home/alice/.config/herald/credentials",
		"move /home/alice/.local/state/herald/herald.db* away; herald check-config /home/alice/.config/herald/herald.yaml",
		"run herald install --user (it writes herald.service)",
	}
	for i, c := range got {
		if c.Fix != want[i] {
			t.Errorf("fix %d:\n got %q\nwant %q", i, c.Fix, want[i])
		}
	}
	if strings.Contains(got[1].Fix, "--user --user") {
		t.Error("--user doubled")
	}
}

func TestStateDirScope(t *testing.T) {
	for _, c := range []struct {
		scope unitstate.Scope
		dir   string
		ok    bool
	}{
		{unitstate.User, "/home/alice/.local/state/herald", true},
		{unitstate.User, "/var/lib/herald", false},
		{unitstate.User, "/var/lib/herald/", false},
		{unitstate.User, "/var/lib/herald/sub", false},
		{unitstate.User, "/var/lib/heraldx", true},
		{unitstate.System, "/var/lib/herald", true},
		{unitstate.System, "/home/alice/.local/state/herald", false},
		{unitstate.NotSystemd, "/var/lib/herald", true},
		{unitstate.NotSystemd, "/home/alice/.local/state/herald", true},
	} {
		err := checkStateDirScope(c.scope, c.dir)
		if (err == nil) != c.ok {
			t.Errorf("%s %s: %v, want ok=%v", c.scope, c.dir, err, c.ok)
		}
	}
}

func TestCredentialsDirFor(t *testing.T) {
	t.Setenv("HOME", "/home/alice")
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1500")
	if got := credentialsDirFor("/run/user/1500/herald/admin.sock"); got != "/home/alice/.config/herald/credentials" {
		t.Errorf("user socket: %s", got)
	}
	if got := credentialsDirFor(paths.AdminSocket); got != paths.CredentialsDir {
		t.Errorf("system socket: %s", got)
	}
}
