// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// manager talks to the sandbox's systemd over the sandbox's system bus
// (dbus-daemon), reached from the host through PID 1's root
// (/proc/<pid>/root/run/dbus/system_bus_socket). systemd's private socket
// would save the bus hop but refuses peers whose PID is not visible in its
// PID namespace (getpeercred gives pid 0 for the host's bench process). A
// job's wall time measured this way is what `systemctl start|stop|restart`
// waits for (the job's JobRemoved signal), without the cost of forking
// nsenter and systemctl, which would add several milliseconds of noise to
// every sample.
type manager struct {
	conn *sddbus.Conn
}

func newManager(ctx context.Context, pid1 int) (*manager, error) {
	path := fmt.Sprintf("/proc/%d/root/run/dbus/system_bus_socket", pid1)
	conn, err := sddbus.NewConnection(func() (*dbus.Conn, error) {
		c, err := dbus.Dial("unix:path="+path, dbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			c.Close()
			return nil, err
		}
		if err := c.Hello(); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("bench: connect to the sandbox's systemd: %w", err)
	}
	return &manager{conn: conn}, nil
}

func (m *manager) Close() { m.conn.Close() }

// job runs one start/stop/restart job and returns its wall time from the
// call to the job's end. A result other than "done" is an error.
func (m *manager) job(ctx context.Context, verb, unit string) (time.Duration, error) {
	ch := make(chan string, 1)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var err error
	start := time.Now()
	switch verb {
	case "start":
		_, err = m.conn.StartUnitContext(ctx, unit, "replace", ch)
	case "stop":
		_, err = m.conn.StopUnitContext(ctx, unit, "replace", ch)
	case "restart":
		_, err = m.conn.RestartUnitContext(ctx, unit, "replace", ch)
	default:
		return 0, fmt.Errorf("bench: unknown job %q", verb)
	}
	if err != nil {
		return 0, fmt.Errorf("bench: %s %s: %w", verb, unit, err)
	}
	select {
	case res := <-ch:
		d := time.Since(start)
		if res != "done" {
			return d, fmt.Errorf("bench: %s %s: job %s", verb, unit, res)
		}
		return d, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("bench: %s %s: %w", verb, unit, ctx.Err())
	}
}

func (m *manager) start(ctx context.Context, unit string) (time.Duration, error) {
	return m.job(ctx, "start", unit)
}

func (m *manager) stop(ctx context.Context, unit string) (time.Duration, error) {
	return m.job(ctx, "stop", unit)
}

func (m *manager) restart(ctx context.Context, unit string) (time.Duration, error) {
	return m.job(ctx, "restart", unit)
}

// resetFailed clears failed state and the start rate limit of units
// (every start, restarts included, counts towards StartLimitBurst=, and a
// service that hits its start limit fails its socket too).
func (m *manager) resetFailed(ctx context.Context, units ...string) {
	for _, u := range units {
		_ = m.conn.ResetFailedUnitContext(ctx, u)
	}
}

// uintProp reads a numeric property of a unit (interface "Unit" or
// "Service").
func (m *manager) uintProp(ctx context.Context, unit, iface, name string) (uint64, error) {
	var p *sddbus.Property
	var err error
	if iface == "Unit" {
		p, err = m.conn.GetUnitPropertyContext(ctx, unit, name)
	} else {
		p, err = m.conn.GetUnitTypePropertyContext(ctx, unit, iface, name)
	}
	if err != nil {
		return 0, fmt.Errorf("bench: %s %s: %w", unit, name, err)
	}
	switch v := p.Value.Value().(type) {
	case uint64:
		return v, nil
	case uint32:
		return uint64(v), nil
	case int64:
		return uint64(v), nil
	case int32:
		return uint64(v), nil
	}
	return 0, fmt.Errorf("bench: %s %s: unexpected type %T", unit, name, p.Value.Value())
}

func (m *manager) strProp(ctx context.Context, unit, iface, name string) (string, error) {
	var p *sddbus.Property
	var err error
	if iface == "Unit" {
		p, err = m.conn.GetUnitPropertyContext(ctx, unit, name)
	} else {
		p, err = m.conn.GetUnitTypePropertyContext(ctx, unit, iface, name)
	}
	if err != nil {
		return "", fmt.Errorf("bench: %s %s: %w", unit, name, err)
	}
	s, _ := p.Value.Value().(string)
	return s, nil
}

// startToReady is ActiveEnterTimestampMonotonic − ExecMainStartTimestampMonotonic
// of the unit's current run: from the fork of the main process to READY=1.
func (m *manager) startToReady(ctx context.Context, unit string) (time.Duration, error) {
	exec, err := m.uintProp(ctx, unit, "Service", "ExecMainStartTimestampMonotonic")
	if err != nil {
		return 0, err
	}
	active, err := m.uintProp(ctx, unit, "Unit", "ActiveEnterTimestampMonotonic")
	if err != nil {
		return 0, err
	}
	if exec == 0 || active < exec {
		return 0, fmt.Errorf("bench: %s: ExecMainStart %d, ActiveEnter %d", unit, exec, active)
	}
	return time.Duration(active-exec) * time.Microsecond, nil
}
