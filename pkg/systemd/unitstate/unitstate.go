// SPDX-License-Identifier: Apache-2.0

package unitstate

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"
)

// ErrNotSelf marks Self errors where the environment does not describe this
// process: $INVOCATION_ID or the unit's MainPID belong to someone else.
// Other Self errors (bus unreachable) are operational.
var ErrNotSelf = errors.New("environment does not match the unit")

// SelfInfo describes the unit this process runs as.
type SelfInfo struct {
	Unit         string // Id, e.g. herald.service
	Bus          string // "system" or "user"
	InvocationID string // 32 lowercase hex digits
	MainPID      uint32
	ActiveState  string // "activating" until READY=1
	SubState     string
	TimeoutStop  time.Duration // TimeoutStopUSec; Infinity if unbounded
	Watchdog     time.Duration // WatchdogUSec; 0 if no watchdog
}

// Self checks, under systemd, that this process is the main process of the
// unit whose invocation $INVOCATION_ID names, and returns that unit's
// details. Not under systemd it returns (nil, nil). A mismatch wraps
// ErrNotSelf; typical causes are a wrapper in ExecStart= (the wrapper is the
// main PID) or herald run by hand from a shell that inherited a service's
// environment.
func Self(ctx context.Context, log *logrus.Entry) (*SelfInfo, error) {
	scope := Detect()
	if scope == NotSystemd {
		return nil, nil
	}
	log = orDiscard(log)
	user := scope == User
	envID := strings.ToLower(os.Getenv("INVOCATION_ID"))
	want, err := hex.DecodeString(envID)
	if err != nil || len(want) != 16 {
		return nil, fmt.Errorf("unitstate: self: INVOCATION_ID=%q is not 32 hex digits: %w", envID, ErrNotSelf)
	}

	ctx, cancel := withDeadline(ctx)
	defer cancel()
	// One connection and the seven properties asked for at once: this runs
	// on every start before READY=1, and go-systemd's connection (two
	// connections and a signal subscription) followed by GetAll of the
	// unit's and the service's hundreds of properties took most of herald's
	// start-up time.
	conn, err := dial(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("unitstate: self: %w", err)
	}
	defer conn.Close()
	unit, svc, err := selfProperties(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("unitstate: self: properties on the %s bus: %w", busName(user), err)
	}
	info := &SelfInfo{
		Unit:        str(unit, "Id"),
		Bus:         busName(user),
		ActiveState: str(unit, "ActiveState"),
		SubState:    str(unit, "SubState"),
	}
	got := bytesProp(unit, "InvocationID")
	info.InvocationID = hex.EncodeToString(got)
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("unitstate: self: INVOCATION_ID=%s but %s (the unit this process belongs to) has InvocationID %s: "+
			"the environment was inherited from another invocation (started from a service's shell?): %w",
			envID, orUnknown(info.Unit), orUnknown(info.InvocationID), ErrNotSelf)
	}
	if !strings.HasSuffix(info.Unit, ".service") {
		return nil, fmt.Errorf("unitstate: self: this process belongs to %s, not a service unit: %w", info.Unit, ErrNotSelf)
	}
	info.MainPID = u32(svc, "MainPID")
	info.TimeoutStop = usec(u64(svc, "TimeoutStopUSec"))
	info.Watchdog = usec(u64(svc, "WatchdogUSec"))
	if pid := os.Getpid(); info.MainPID != uint32(pid) {
		return nil, fmt.Errorf("unitstate: self: %s has MainPID %d but this is PID %d: "+
			"ExecStart= must exec herald directly (a wrapper is the main process, and NotifyAccess=main drops herald's sd_notify): %w",
			info.Unit, info.MainPID, pid, ErrNotSelf)
	}
	log.WithFields(logrus.Fields{
		"unit": info.Unit, "bus": info.Bus, "invocation_id": info.InvocationID,
		"timeout_stop": info.TimeoutStop.String(), "watchdog": info.Watchdog.String(),
	}).Debug("running as systemd unit")
	return info, nil
}

// selfProperties reads, for the unit this process belongs to, the unit
// properties Id, InvocationID, ActiveState and SubState and the service
// properties MainPID, TimeoutStopUSec and WatchdogUSec, all requests sent
// before the first answer is read. A property the manager does not have
// (older systemd, or a unit that is not a service) reads as the zero value,
// as it would be missing from GetAll; Id and InvocationID are required.
func selfProperties(ctx context.Context, conn *dbus.Conn) (unit, svc map[string]any, err error) {
	const unitIface, svcIface = "org.freedesktop.systemd1.Unit", "org.freedesktop.systemd1.Service"
	props := []struct {
		iface, name string
		required    bool
	}{
		{unitIface, "Id", true}, {unitIface, "InvocationID", true}, {unitIface, "ActiveState", false}, {unitIface, "SubState", false},
		{svcIface, "MainPID", false}, {svcIface, "TimeoutStopUSec", false}, {svcIface, "WatchdogUSec", false},
	}
	obj := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/self")
	calls := make([]*dbus.Call, len(props))
	for i, p := range props {
		calls[i] = obj.GoWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, make(chan *dbus.Call, 1), p.iface, p.name)
	}
	unit, svc = map[string]any{}, map[string]any{}
	for i, p := range props {
		var c *dbus.Call
		select {
		case c = <-calls[i].Done:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("get %s.%s: %w", p.iface, p.name, ctx.Err())
		}
		var v dbus.Variant
		if err := c.Store(&v); err != nil {
			var remote dbus.Error
			if errors.As(err, &remote) && !p.required {
				continue
			}
			return nil, nil, fmt.Errorf("get %s.%s: %w", p.iface, p.name, err)
		}
		if p.iface == unitIface {
			unit[p.name] = v.Value()
		} else {
			svc[p.name] = v.Value()
		}
	}
	return unit, svc, nil
}

// RunningError reports a herald unit that is running (or about to) under a
// service manager.
type RunningError struct {
	Unit        string
	Bus         string // "system" or "user"
	ActiveState string
	SubState    string
	MainPID     uint32 // 0 if none (e.g. activating/auto-restart)
}

func (e *RunningError) Error() string {
	flag := ""
	if e.Bus == "user" {
		flag = " --user"
	}
	pid := ""
	if e.MainPID != 0 {
		pid = fmt.Sprintf(" with MainPID %d", e.MainPID)
	}
	return fmt.Sprintf("%s is %s (%s)%s on the %s bus: use `systemctl%s restart %s` / `journalctl%s -u %s`, "+
		"or stop it before running herald by hand",
		e.Unit, e.ActiveState, e.SubState, pid, e.Bus, flag, e.Unit, flag, e.Unit)
}

// runningStates: a unit in any of these has (or is about to have) a herald
// process; "activating" includes auto-restart, so a crash-looping unit
// blocks a manual start too.
var runningStates = []string{"active", "activating", "deactivating", "reloading"}

// CheckNotRunning looks for unit (default herald.service) and herald@*.service
// in a running state on the system bus, then on the user bus. It returns a
// *RunningError for the first one found (unit itself preferred), else nil.
// A unit whose MainPID is this process is skipped (that is us). A bus that
// cannot be reached or queried is skipped with a debug log: the state
// directory lock still protects the data.
func CheckNotRunning(ctx context.Context, log *logrus.Entry, unit string) error {
	log = orDiscard(log)
	if unit == "" {
		unit = "herald.service"
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	for _, user := range []bool{false, true} {
		rerr, err := checkBus(ctx, user, unit)
		if err != nil {
			log.WithError(err).WithField("bus", busName(user)).Debug("cannot ask systemd whether herald is running; relying on the state directory lock")
			continue
		}
		if rerr != nil {
			return rerr
		}
	}
	return nil
}

func checkBus(ctx context.Context, user bool, unit string) (*RunningError, error) {
	conn, err := connect(ctx, user)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	patterns := []string{unit}
	if unit != "herald@*.service" {
		patterns = append(patterns, "herald@*.service")
	}
	units, err := conn.ListUnitsByPatternsContext(ctx, runningStates, patterns)
	if err != nil {
		return nil, fmt.Errorf("ListUnitsByPatterns: %w", err)
	}
	// The configured unit first, then by name: deterministic reports.
	slices.SortFunc(units, func(a, b sd.UnitStatus) int {
		if (a.Name == unit) != (b.Name == unit) {
			if a.Name == unit {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	self := uint32(os.Getpid())
	for _, u := range units {
		var pid uint32
		if strings.HasSuffix(u.Name, ".service") {
			if p, err := conn.GetServicePropertyContext(ctx, u.Name, "MainPID"); err == nil {
				pid, _ = p.Value.Value().(uint32)
			}
		}
		if pid != 0 && pid == self {
			continue
		}
		return &RunningError{Unit: u.Name, Bus: busName(user), ActiveState: u.ActiveState, SubState: u.SubState, MainPID: pid}, nil
	}
	return nil, nil
}

// UnitStatus is a unit's state as `herald status` shows it. Service fields
// are zero for other unit types and for units that do not exist.
type UnitStatus struct {
	Unit        string
	Bus         string // "system" or "user"
	LoadState   string // "not-found" if there is no such unit
	ActiveState string
	SubState    string
	// ActiveEnterTimestamp is when the unit last became active (zero: never).
	ActiveEnterTimestamp time.Time
	InvocationID         string // hex; empty if never started
	FragmentPath         string
	NeedDaemonReload     bool
	// UnitFileState is what `systemctl is-enabled` prints: enabled,
	// disabled, masked, enabled-runtime, static, …
	UnitFileState string

	MainPID        uint32
	StatusText     string
	NRestarts      uint32
	Result         string
	ExecMainCode   int32 // 1 exited, 2 killed, 3 dumped (CLD_* codes)
	ExecMainStatus int32 // exit status or signal number
	TimeoutStop    time.Duration
	Watchdog       time.Duration
}

// Describe reads unit's state from the system manager (user false) or the
// user manager. A unit that does not exist is not an error: LoadState is
// "not-found".
func Describe(ctx context.Context, unit string, user bool) (*UnitStatus, error) {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	conn, err := connect(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("unitstate: describe %s: %w", unit, err)
	}
	defer conn.Close()
	props, err := conn.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return nil, fmt.Errorf("unitstate: describe %s: %w", unit, err)
	}
	st := &UnitStatus{
		Unit:                 unit,
		Bus:                  busName(user),
		LoadState:            str(props, "LoadState"),
		ActiveState:          str(props, "ActiveState"),
		SubState:             str(props, "SubState"),
		ActiveEnterTimestamp: timestamp(u64(props, "ActiveEnterTimestamp")),
		InvocationID:         hex.EncodeToString(bytesProp(props, "InvocationID")),
		FragmentPath:         str(props, "FragmentPath"),
		NeedDaemonReload:     boolean(props, "NeedDaemonReload"),
		UnitFileState:        str(props, "UnitFileState"),
	}
	if id := str(props, "Id"); id != "" {
		st.Unit = id
	}
	if st.LoadState == "not-found" || !strings.HasSuffix(st.Unit, ".service") {
		return st, nil
	}
	svc, err := conn.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		return nil, fmt.Errorf("unitstate: describe %s: service properties: %w", unit, err)
	}
	st.MainPID = u32(svc, "MainPID")
	st.StatusText = str(svc, "StatusText")
	st.NRestarts = u32(svc, "NRestarts")
	st.Result = str(svc, "Result")
	st.ExecMainCode = i32(svc, "ExecMainCode")
	st.ExecMainStatus = i32(svc, "ExecMainStatus")
	st.TimeoutStop = usec(u64(svc, "TimeoutStopUSec"))
	st.Watchdog = usec(u64(svc, "WatchdogUSec"))
	return st, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func orDiscard(log *logrus.Entry) *logrus.Entry {
	if log != nil {
		return log
	}
	l := logrus.New()
	l.Out = io.Discard
	return logrus.NewEntry(l)
}
