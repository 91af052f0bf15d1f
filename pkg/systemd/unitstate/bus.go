// SPDX-License-Identifier: Apache-2.0

package unitstate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 5 * time.Second

// Scope says which service manager, if any, runs this process.
type Scope int

const (
	// NotSystemd: no $INVOCATION_ID, e.g. started by hand.
	NotSystemd Scope = iota
	// System: run by the system manager; its bus is the system bus.
	System
	// User: run by a user manager ($MANAGERPID set); its bus is the user bus.
	User
)

func (s Scope) String() string {
	switch s {
	case System:
		return "system"
	case User:
		return "user"
	default:
		return "none"
	}
}

// Detect returns the scope from $INVOCATION_ID and $MANAGERPID.
func Detect() Scope {
	switch {
	case os.Getenv("INVOCATION_ID") == "":
		return NotSystemd
	case os.Getenv("MANAGERPID") != "":
		return User
	default:
		return System
	}
}

// errNoUserBus: no user bus address could be found without autolaunch.
var errNoUserBus = errors.New("no user bus (DBUS_SESSION_BUS_ADDRESS unset, no $XDG_RUNTIME_DIR/bus or /run/user/<uid>/bus)")

// systemBusAddress is where the system bus is, as sd-bus and godbus look it
// up.
func systemBusAddress() string {
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	return "unix:path=/run/dbus/system_bus_socket"
}

// userBusAddress finds the user bus without autolaunching one: godbus'
// session lookup ends in dbus-launch (and writes DBUS_SESSION_BUS_ADDRESS
// into the environment on the way).
func userBusAddress() (string, error) {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		var keep []string
		for _, part := range strings.Split(a, ";") {
			if part != "" && !strings.HasPrefix(part, "autolaunch:") {
				keep = append(keep, part)
			}
		}
		if len(keep) > 0 {
			return strings.Join(keep, ";"), nil
		}
	}
	var candidates []string
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		candidates = append(candidates, filepath.Join(dir, "bus"))
	}
	candidates = append(candidates, fmt.Sprintf("/run/user/%d/bus", os.Getuid()))
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Type() == fs.ModeSocket {
			return "unix:path=" + p, nil
		}
	}
	return "", errNoUserBus
}

func busName(user bool) string {
	if user {
		return "user"
	}
	return "system"
}

// connect opens a go-systemd connection to the system or user bus. Its
// lifetime is bound to ctx as well: godbus closes the connection when ctx
// ends, which also unblocks a peer that stops answering mid-handshake.
func connect(ctx context.Context, user bool) (*sd.Conn, error) {
	// dial's errors name the bus and its address.
	return sd.NewConnection(func() (*dbus.Conn, error) { return dial(ctx, user) })
}

// dial opens one authenticated connection to the system or user bus, bound
// to ctx like connect's. go-systemd's connection opens two (one for its
// signals) and subscribes to job signals; a caller that only reads
// properties needs neither.
func dial(ctx context.Context, user bool) (*dbus.Conn, error) {
	addr := systemBusAddress()
	if user {
		var err error
		if addr, err = userBusAddress(); err != nil {
			return nil, err
		}
	}
	c, err := dbus.Dial(addr, dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("%s bus %s: %w", busName(user), addr, err)
	}
	// EXTERNAL with the numeric uid, as go-systemd does (no user lookup).
	if err := c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("%s bus %s: %w", busName(user), addr, err)
	}
	if err := c.Hello(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("%s bus %s: %w", busName(user), addr, err)
	}
	return c, nil
}

// withDeadline applies DefaultTimeout to a context without a deadline.
func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// Infinity stands for systemd's USEC_INFINITY ("infinity" in unit files).
const Infinity = time.Duration(1<<63 - 1)

func usec(v uint64) time.Duration {
	if v == 1<<64-1 || v > uint64(Infinity/time.Microsecond) {
		return Infinity
	}
	return time.Duration(v) * time.Microsecond
}

// Typed property accessors: a missing property (older systemd) or an
// unexpected type reads as the zero value.
func str(m map[string]any, k string) string { v, _ := m[k].(string); return v }
func u32(m map[string]any, k string) uint32 { v, _ := m[k].(uint32); return v }
func u64(m map[string]any, k string) uint64 { v, _ := m[k].(uint64); return v }
func i32(m map[string]any, k string) int32  { v, _ := m[k].(int32); return v }
func boolean(m map[string]any, k string) bool {
	v, _ := m[k].(bool)
	return v
}
func bytesProp(m map[string]any, k string) []byte { v, _ := m[k].([]byte); return v }

func timestamp(us uint64) time.Time {
	if us == 0 || us == 1<<64-1 {
		return time.Time{}
	}
	return time.UnixMicro(int64(us))
}
