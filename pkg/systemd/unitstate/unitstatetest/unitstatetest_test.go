// SPDX-License-Identifier: Apache-2.0

package unitstatetest

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func client(t *testing.T, b *Bus) *sd.Conn {
	t.Helper()
	c, err := sd.NewConnection(func() (*dbus.Conn, error) {
		return dbus.Connect(b.Address(), dbus.WithAuth(dbus.AuthExternal(strconv.Itoa(os.Getuid()))))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestFakeSystemd(t *testing.T) {
	b := StartBus(t, "")
	s := NewSystemd(t, b)
	s.SetUnit(Unit{Name: "herald.service", MainPID: 42})
	s.SetUnit(Unit{Name: "herald@a.service", ActiveState: "failed", SubState: "failed"})
	s.SetUnit(Unit{Name: "herald@b.service", ActiveState: "activating", SubState: "auto-restart"})
	s.SetUnit(Unit{Name: "other.service"})
	s.SetSelf("herald.service")
	c := client(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	units, err := c.ListUnitsByPatternsContext(ctx, []string{"active", "activating"}, []string{"herald.service", "herald@*.service"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, u := range units {
		got[u.Name] = u.ActiveState + "/" + u.SubState
	}
	if len(got) != 2 || got["herald.service"] != "active/running" || got["herald@b.service"] != "activating/auto-restart" {
		t.Errorf("ListUnitsByPatterns = %v", got)
	}

	self, err := c.GetUnitPropertiesContext(ctx, "self")
	if err != nil {
		t.Fatal(err)
	}
	if self["Id"] != "herald.service" {
		t.Errorf("self Id = %v", self["Id"])
	}
	pid, err := c.GetServicePropertyContext(ctx, "herald.service", "MainPID")
	if err != nil {
		t.Fatal(err)
	}
	if pid.Value.Value() != uint32(42) {
		t.Errorf("MainPID = %v", pid.Value.Value())
	}
	missing, err := c.GetUnitPropertiesContext(ctx, "no-such.service")
	if err != nil {
		t.Fatal(err)
	}
	if missing["LoadState"] != "not-found" || missing["Id"] != "no-such.service" {
		t.Errorf("unknown unit = %v, want LoadState not-found", missing)
	}
	if s.Calls("ListUnitsByPatterns") != 1 || s.Calls("GetAll") != 2 || s.Calls("Get") != 1 {
		t.Errorf("calls: list %d, getall %d, get %d", s.Calls("ListUnitsByPatterns"), s.Calls("GetAll"), s.Calls("Get"))
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"herald_2eservice":        "herald.service",
		"herald_40a_2eservice":    "herald@a.service",
		"self":                    "self",
		"foo_5fbar_2eservice":     "foo_bar.service",
		sd.PathBusEscape("a-b.c"): "a-b.c",
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
