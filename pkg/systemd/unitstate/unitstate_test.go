// SPDX-License-Identifier: Apache-2.0

package unitstate

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/systemd/unitstate/unitstatetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const invocation = "0123456789abcdef0123456789abcdef"

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// env isolates a test from the host's buses and service manager.
func env(t *testing.T) {
	t.Helper()
	for _, k := range []string{"INVOCATION_ID", "MANAGERPID", "DBUS_SESSION_BUS_ADDRESS", "DBUS_SYSTEM_BUS_ADDRESS", "XDG_RUNTIME_DIR"} {
		t.Setenv(k, "")
		_ = os.Unsetenv(k)
	}
	// Nothing listens here: a fallback to the host's real buses would fail.
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-system-bus"))
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func debugLog() (*logrus.Entry, *test.Hook) {
	l, h := test.NewNullLogger()
	l.SetLevel(logrus.DebugLevel)
	return logrus.NewEntry(l), h
}

func TestDetect(t *testing.T) {
	tests := []struct {
		inv, mgr string
		want     Scope
	}{
		{"", "", NotSystemd},
		{"", "1234", NotSystemd},
		{invocation, "", System},
		{invocation, "1234", User},
	}
	for _, tt := range tests {
		t.Setenv("INVOCATION_ID", tt.inv)
		t.Setenv("MANAGERPID", tt.mgr)
		if got := Detect(); got != tt.want {
			t.Errorf("Detect(INVOCATION_ID=%q, MANAGERPID=%q) = %v, want %v", tt.inv, tt.mgr, got, tt.want)
		}
	}
}

func selfUnit() unitstatetest.Unit {
	return unitstatetest.Unit{
		Name:            "herald.service",
		ActiveState:     "activating", // before READY=1
		SubState:        "start",
		InvocationID:    mustHex(invocation),
		MainPID:         uint32(os.Getpid()),
		TimeoutStopUSec: 90_000_000,
		WatchdogUSec:    4_000_000,
	}
}

func systemBus(t *testing.T) (*unitstatetest.Bus, *unitstatetest.Systemd) {
	t.Helper()
	bus := unitstatetest.StartBus(t, "")
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Address())
	return bus, unitstatetest.NewSystemd(t, bus)
}

func TestSelfNotUnderSystemd(t *testing.T) {
	env(t)
	info, err := Self(ctx(t), nil)
	if info != nil || err != nil {
		t.Fatalf("Self = %+v, %v; want nil, nil", info, err)
	}
}

func TestSelf(t *testing.T) {
	env(t)
	_, fake := systemBus(t)
	fake.SetUnit(selfUnit())
	fake.SetSelf("herald.service")
	t.Setenv("INVOCATION_ID", invocation)

	info, err := Self(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := SelfInfo{
		Unit: "herald.service", Bus: "system", InvocationID: invocation, MainPID: uint32(os.Getpid()),
		ActiveState: "activating", SubState: "start", TimeoutStop: 90 * time.Second, Watchdog: 4 * time.Second,
	}
	if *info != want {
		t.Errorf("Self = %+v\nwant   %+v", *info, want)
	}
	// Self runs before every READY=1: it asks for the seven properties it
	// uses, never for all of them (GetAll of a service serializes hundreds,
	// some read from the unit's cgroup).
	if n := fake.Calls("GetAll"); n != 0 {
		t.Errorf("Self called GetAll %d times, want 0", n)
	}
	if n := fake.Calls("Get"); n != 7 {
		t.Errorf("Self called Get %d times, want 7", n)
	}
}

// TestSelfOptionalPropertiesMissing: a property an older manager does not
// have reads as its zero value, as a GetAll without it did; Id and
// InvocationID are required.
func TestSelfOptionalPropertiesMissing(t *testing.T) {
	env(t)
	_, fake := systemBus(t)
	u := selfUnit()
	fake.SetUnit(u)
	fake.SetSelf(u.Name)
	fake.HideProperty("WatchdogUSec")
	t.Setenv("INVOCATION_ID", invocation)
	info, err := Self(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Watchdog != 0 || info.TimeoutStop != 90*time.Second {
		t.Errorf("Self = %+v, want Watchdog 0 and TimeoutStop 90s", info)
	}
	fake.HideProperty("InvocationID")
	if info, err := Self(ctx(t), nil); err == nil || errors.Is(err, ErrNotSelf) {
		t.Fatalf("Self without InvocationID = %+v, %v; want an operational error", info, err)
	}
}

func TestSelfUserManager(t *testing.T) {
	env(t)
	bus := unitstatetest.StartBus(t, "")
	fake := unitstatetest.NewSystemd(t, bus)
	fake.SetUnit(selfUnit())
	fake.SetSelf("herald.service")
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus.Address())
	t.Setenv("INVOCATION_ID", invocation)
	t.Setenv("MANAGERPID", "1")

	info, err := Self(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Bus != "user" || info.Unit != "herald.service" {
		t.Errorf("Self = %+v, want herald.service on the user bus", info)
	}
}

func TestSelfMismatch(t *testing.T) {
	tests := []struct {
		name   string
		envID  string
		modify func(*unitstatetest.Unit)
		want   string
	}{
		{"invocation", "ffffffffffffffffffffffffffffffff", nil, "has InvocationID " + invocation},
		{"main pid", invocation, func(u *unitstatetest.Unit) { u.MainPID = 1 }, "has MainPID 1 but this is PID"},
		{"malformed env", "xyz", nil, "is not 32 hex digits"},
		{"not a service", invocation, func(u *unitstatetest.Unit) { u.Name = "session-1.scope" }, "not a service unit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env(t)
			_, fake := systemBus(t)
			u := selfUnit()
			if tt.modify != nil {
				tt.modify(&u)
			}
			fake.SetUnit(u)
			fake.SetSelf(u.Name)
			t.Setenv("INVOCATION_ID", tt.envID)
			info, err := Self(ctx(t), nil)
			if !errors.Is(err, ErrNotSelf) || info != nil {
				t.Fatalf("Self = %+v, %v; want ErrNotSelf", info, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestSelfBusUnreachable(t *testing.T) {
	env(t)
	t.Setenv("INVOCATION_ID", invocation)
	info, err := Self(ctx(t), nil)
	if err == nil || errors.Is(err, ErrNotSelf) || info != nil {
		t.Fatalf("Self = %+v, %v; want an operational error", info, err)
	}
	if !strings.HasPrefix(err.Error(), "unitstate: self: system bus ") {
		t.Errorf("error %q", err)
	}
}

func TestCheckNotRunning(t *testing.T) {
	tests := []struct {
		name  string
		units []unitstatetest.Unit
		want  *RunningError
		msg   string
	}{
		{
			name:  "active",
			units: []unitstatetest.Unit{{Name: "herald.service", MainPID: 1234}},
			want:  &RunningError{Unit: "herald.service", Bus: "system", ActiveState: "active", SubState: "running", MainPID: 1234},
			msg: "herald.service is active (running) with MainPID 1234 on the system bus: " +
				"use `systemctl restart herald.service` / `journalctl -u herald.service`, or stop it before running herald by hand",
		},
		{
			name:  "crash loop",
			units: []unitstatetest.Unit{{Name: "herald@work.service", ActiveState: "activating", SubState: "auto-restart"}},
			want:  &RunningError{Unit: "herald@work.service", Bus: "system", ActiveState: "activating", SubState: "auto-restart"},
			msg: "herald@work.service is activating (auto-restart) on the system bus: " +
				"use `systemctl restart herald@work.service` / `journalctl -u herald@work.service`, or stop it before running herald by hand",
		},
		{
			name: "configured unit preferred",
			units: []unitstatetest.Unit{
				{Name: "herald@a.service", MainPID: 10},
				{Name: "herald.service", ActiveState: "reloading", SubState: "reload", MainPID: 11},
			},
			want: &RunningError{Unit: "herald.service", Bus: "system", ActiveState: "reloading", SubState: "reload", MainPID: 11},
		},
		{
			name:  "deactivating",
			units: []unitstatetest.Unit{{Name: "herald.service", ActiveState: "deactivating", SubState: "stop-sigterm", MainPID: 7}},
			want:  &RunningError{Unit: "herald.service", Bus: "system", ActiveState: "deactivating", SubState: "stop-sigterm", MainPID: 7},
		},
		{
			name: "stopped or failed",
			units: []unitstatetest.Unit{
				{Name: "herald.service", ActiveState: "inactive", SubState: "dead"},
				{Name: "herald@x.service", ActiveState: "failed", SubState: "failed"},
			},
		},
		{
			name:  "other units",
			units: []unitstatetest.Unit{{Name: "heraldry.service", MainPID: 5}, {Name: "herald.socket", SubState: "listening"}},
		},
		{
			name:  "that is us",
			units: []unitstatetest.Unit{{Name: "herald.service", MainPID: uint32(os.Getpid())}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env(t)
			_, fake := systemBus(t)
			for _, u := range tt.units {
				fake.SetUnit(u)
			}
			err := CheckNotRunning(ctx(t), nil, "herald.service")
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckNotRunning = %v, want nil", err)
				}
				return
			}
			var re *RunningError
			if !errors.As(err, &re) {
				t.Fatalf("CheckNotRunning = %v, want *RunningError", err)
			}
			if *re != *tt.want {
				t.Errorf("RunningError %+v\nwant         %+v", *re, *tt.want)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("Error() = %q\nwant      %q", err.Error(), tt.msg)
			}
		})
	}
}

func TestCheckNotRunningUserBusViaXDGRuntimeDir(t *testing.T) {
	env(t)
	systemBus(t) // reachable, nothing running
	runtime := t.TempDir()
	if len(runtime) > 90 {
		t.Skip("temporary directory too long for a socket path")
	}
	user := unitstatetest.StartBus(t, runtime) // socket at $XDG_RUNTIME_DIR/bus
	fake := unitstatetest.NewSystemd(t, user)
	fake.SetUnit(unitstatetest.Unit{Name: "herald.service", MainPID: 4321})
	t.Setenv("XDG_RUNTIME_DIR", runtime)

	err := CheckNotRunning(ctx(t), nil, "")
	var re *RunningError
	if !errors.As(err, &re) || re.Bus != "user" || re.MainPID != 4321 {
		t.Fatalf("CheckNotRunning = %v, want herald.service on the user bus", err)
	}
	want := "herald.service is active (running) with MainPID 4321 on the user bus: " +
		"use `systemctl --user restart herald.service` / `journalctl --user -u herald.service`, or stop it before running herald by hand"
	if err.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", err.Error(), want)
	}
}

func TestCheckNotRunningUnreachableBuses(t *testing.T) {
	env(t)
	// No system bus; the session address asks for autolaunch, which must not
	// happen: a fake dbus-launch early in PATH records any call.
	bin := t.TempDir()
	marker := filepath.Join(t.TempDir(), "dbus-launch-called")
	script := "#!/bin/sh\ntouch " + marker + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "dbus-launch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "autolaunch:")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir()) // no bus socket in it

	log, hook := debugLog()
	if err := CheckNotRunning(ctx(t), log, "herald.service"); err != nil {
		t.Fatalf("CheckNotRunning with no bus = %v, want nil", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("dbus-launch was called: a daemon must never autolaunch a bus")
	}
	if _, err := os.Stat(filepath.Join("/run/user", strconv.Itoa(os.Getuid()), "bus")); err == nil {
		t.Skip("this host has a real user bus; the rest of the test assumes none")
	}
	var debugs int
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.DebugLevel {
			debugs++
		} else {
			t.Errorf("logged at %v: %s", e.Level, e.Message)
		}
	}
	if debugs != 2 {
		t.Errorf("%d debug entries, want one per unreachable bus", debugs)
	}
}

func TestCheckNotRunningBusWithoutSystemd(t *testing.T) {
	env(t)
	bus := unitstatetest.StartBus(t, "") // a bus, but nobody owns org.freedesktop.systemd1
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Address())
	if err := CheckNotRunning(ctx(t), nil, "herald.service"); err != nil {
		t.Fatalf("CheckNotRunning = %v, want nil", err)
	}
}

func TestDescribe(t *testing.T) {
	env(t)
	_, fake := systemBus(t)
	started := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	fake.SetUnit(unitstatetest.Unit{
		Name: "herald.service", InvocationID: mustHex(invocation), FragmentPath: "/usr/lib/systemd/system/herald.service",
		NeedDaemonReload: true, ActiveEnterTimestamp: uint64(started.UnixMicro()), UnitFileState: "enabled",
		MainPID: 999, StatusText: "telegram up; 2 in flight", NRestarts: 3, Result: "success",
		ExecMainCode: 0, ExecMainStatus: 0, TimeoutStopUSec: 1<<64 - 1, WatchdogUSec: 10_000_000,
	})
	fake.SetUnit(unitstatetest.Unit{Name: "herald.socket", SubState: "listening"})

	st, err := Describe(ctx(t), "herald.service", false)
	if err != nil {
		t.Fatal(err)
	}
	want := UnitStatus{
		Unit: "herald.service", Bus: "system", LoadState: "loaded", ActiveState: "active", SubState: "running",
		ActiveEnterTimestamp: started, InvocationID: invocation, FragmentPath: "/usr/lib/systemd/system/herald.service",
		NeedDaemonReload: true, UnitFileState: "enabled", MainPID: 999, StatusText: "telegram up; 2 in flight", NRestarts: 3, Result: "success",
		TimeoutStop: Infinity, Watchdog: 10 * time.Second,
	}
	if !st.ActiveEnterTimestamp.Equal(want.ActiveEnterTimestamp) {
		t.Errorf("ActiveEnterTimestamp %v, want %v", st.ActiveEnterTimestamp, want.ActiveEnterTimestamp)
	}
	st.ActiveEnterTimestamp = want.ActiveEnterTimestamp
	if *st != want {
		t.Errorf("Describe = %+v\nwant       %+v", *st, want)
	}

	sock, err := Describe(ctx(t), "herald.socket", false)
	if err != nil {
		t.Fatal(err)
	}
	if sock.ActiveState != "active" || sock.SubState != "listening" || sock.MainPID != 0 {
		t.Errorf("socket %+v", sock)
	}

	missing, err := Describe(ctx(t), "nonexistent.service", false)
	if err != nil {
		t.Fatalf("Describe(nonexistent) = %v, want no error", err)
	}
	if missing.LoadState != "not-found" || missing.ActiveState != "inactive" || missing.MainPID != 0 || !missing.ActiveEnterTimestamp.IsZero() {
		t.Errorf("Describe(nonexistent) = %+v, want LoadState not-found", missing)
	}
}

func TestDescribeUserBus(t *testing.T) {
	env(t)
	bus := unitstatetest.StartBus(t, "")
	fake := unitstatetest.NewSystemd(t, bus)
	fake.SetUnit(unitstatetest.Unit{Name: "herald.service", ActiveState: "failed", SubState: "failed", Result: "watchdog", ExecMainCode: 1, ExecMainStatus: 2})
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus.Address())
	st, err := Describe(ctx(t), "herald.service", true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bus != "user" || st.Result != "watchdog" || st.ExecMainCode != 1 || st.ExecMainStatus != 2 {
		t.Errorf("Describe = %+v", st)
	}
	// The system bus is unreachable in this test: an error, not a guess.
	if _, err := Describe(ctx(t), "herald.service", false); err == nil {
		t.Error("Describe on an unreachable system bus: no error")
	}
}

func TestDeadlineApplied(t *testing.T) {
	c, cancel := withDeadline(context.Background())
	defer cancel()
	if d, ok := c.Deadline(); !ok || time.Until(d) > DefaultTimeout {
		t.Errorf("deadline %v %v", d, ok)
	}
}

func TestUsec(t *testing.T) {
	tests := []struct {
		in   uint64
		want time.Duration
	}{
		{0, 0},
		{1_500_000, 1500 * time.Millisecond},
		{1<<64 - 1, Infinity},
		{1 << 63, Infinity},
	}
	for _, tt := range tests {
		if got := usec(tt.in); got != tt.want {
			t.Errorf("usec(%d) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// blackhole is a unix socket that accepts connections and never answers,
// like a wedged bus.
func blackhole(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "bus")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "unix:path=" + path
}

func TestWedgedBusBoundedByContext(t *testing.T) {
	env(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", blackhole(t))
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", blackhole(t))
	t.Setenv("INVOCATION_ID", invocation)

	run := func(name string, f func(context.Context) error) error {
		c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- f(c) }()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not return after its context ended", name)
			return nil
		}
	}
	if err := run("CheckNotRunning", func(c context.Context) error { return CheckNotRunning(c, nil, "herald.service") }); err != nil {
		t.Errorf("CheckNotRunning on wedged buses = %v, want nil (unreachable is not an error)", err)
	}
	if err := run("Describe", func(c context.Context) error { _, err := Describe(c, "herald.service", false); return err }); err == nil {
		t.Error("Describe on a wedged bus: no error")
	}
	if err := run("Self", func(c context.Context) error { _, err := Self(c, nil); return err }); err == nil || errors.Is(err, ErrNotSelf) {
		t.Errorf("Self on a wedged bus = %v, want an operational error", err)
	}
}
