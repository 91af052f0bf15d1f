// SPDX-License-Identifier: Apache-2.0

package unitstatetest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Bus is a private dbus-daemon listening on a unix socket.
type Bus struct {
	addr string
	sock string
}

// Address is the bus address ("unix:path=…").
func (b *Bus) Address() string { return b.addr }

// SocketPath is the bus socket's file system path.
func (b *Bus) SocketPath() string { return b.sock }

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// StartBus starts a dbus-daemon whose socket is dir/bus (dir "" = a fresh
// temporary directory) and stops it when the test ends. It skips the test
// if dbus-daemon is not installed.
func StartBus(t testing.TB, dir string) *Bus {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("dbus-daemon not installed: skipping D-Bus test")
	}
	if dir == "" {
		dir = shortTempDir(t)
	}
	sock := filepath.Join(dir, "bus")
	cfg := filepath.Join(shortTempDir(t), "bus.conf")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(busConfig, sock)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+cfg, "--print-address", "--nofork")
	cmd.Env = os.Environ()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("unitstatetest: starting dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	select {
	case addr := <-lines:
		if addr == "" {
			t.Fatal("unitstatetest: dbus-daemon printed no address")
		}
		return &Bus{addr: addr, sock: sock}
	case <-time.After(10 * time.Second):
		t.Fatal("unitstatetest: dbus-daemon did not start within 10s")
		return nil
	}
}

// shortTempDir is a temporary directory with a path short enough for
// sun_path, removed when the test ends.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ust")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Unit is a unit as the fake reports it. Zero LoadState/ActiveState/SubState
// default to loaded/active/running, Result to success.
type Unit struct {
	Name        string
	Description string
	LoadState   string
	ActiveState string
	SubState    string

	// Unit interface.
	InvocationID         []byte
	FragmentPath         string
	NeedDaemonReload     bool
	ActiveEnterTimestamp uint64 // µs since the epoch
	UnitFileState        string // `systemctl is-enabled`; empty as for a transient unit

	// Service interface (only for *.service).
	MainPID         uint32
	StatusText      string
	NRestarts       uint32
	Result          string
	ExecMainCode    int32
	ExecMainStatus  int32
	TimeoutStopUSec uint64
	WatchdogUSec    uint64
}

func (u Unit) withDefaults() Unit {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&u.LoadState, "loaded")
	def(&u.ActiveState, "active")
	def(&u.SubState, "running")
	def(&u.Result, "success")
	return u
}

// notFound is what systemd reports for a unit it cannot load.
func notFound(name string) Unit {
	return Unit{Name: name, LoadState: "not-found", ActiveState: "inactive", SubState: "dead", Result: "success", TimeoutStopUSec: 90_000_000}
}

const (
	busName     = "org.freedesktop.systemd1"
	managerPath = dbus.ObjectPath("/org/freedesktop/systemd1")
	unitPrefix  = "/org/freedesktop/systemd1/unit"
	ifaceUnit   = "org.freedesktop.systemd1.Unit"
	ifaceSvc    = "org.freedesktop.systemd1.Service"
	ifaceMgr    = "org.freedesktop.systemd1.Manager"
	ifaceProps  = "org.freedesktop.DBus.Properties"
)

// Systemd is a fake systemd manager on a Bus. Its methods are safe for
// concurrent use.
type Systemd struct {
	conn *dbus.Conn

	mu    sync.Mutex
	units map[string]Unit
	self  string
	calls map[string]int
	// hidden properties are missing from every unit, as on an older
	// systemd.
	hidden map[string]bool
}

// NewSystemd connects to b, owns org.freedesktop.systemd1 and serves the
// fake manager until the test ends.
func NewSystemd(t testing.TB, b *Bus) *Systemd {
	t.Helper()
	conn, err := dbus.Connect(b.Address(), dbus.WithAuth(dbus.AuthExternal(strconv.Itoa(os.Getuid()))))
	if err != nil {
		t.Fatalf("unitstatetest: connecting to %s: %v", b.Address(), err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s := &Systemd{conn: conn, units: map[string]Unit{}, calls: map[string]int{}, hidden: map[string]bool{}}
	if err := conn.Export(manager{s}, managerPath, ifaceMgr); err != nil {
		t.Fatal(err)
	}
	if err := conn.ExportSubtree(properties{s}, unitPrefix, ifaceProps); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(busName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("unitstatetest: requesting %s: %v %v", busName, reply, err)
	}
	return s
}

// SetUnit adds or replaces a unit.
func (s *Systemd) SetUnit(u Unit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.units[u.Name] = u.withDefaults()
}

// SetSelf makes …/unit/self resolve to the named unit.
func (s *Systemd) SetSelf(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.self = name
}

// HideProperty removes a property from every unit, as on a systemd that
// does not have it: Get answers UnknownProperty and GetAll leaves it out.
func (s *Systemd) HideProperty(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hidden[name] = true
}

// Calls returns how often a method ("ListUnitsByPatterns", "GetAll",
// "Get") was called.
func (s *Systemd) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func (s *Systemd) lookup(name string) Unit {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "self" && s.self != "" {
		name = s.self
	}
	if u, ok := s.units[name]; ok {
		return u
	}
	return notFound(name)
}

func (s *Systemd) count(method string) {
	s.mu.Lock()
	s.calls[method]++
	s.mu.Unlock()
}

type manager struct{ s *Systemd }

// ListUnitsByPatterns implements the manager method: a unit matches if
// states contains its load, active or sub state (or states is empty) and
// its name matches a pattern (or patterns is empty). Only loaded units are
// listed.
func (m manager) ListUnitsByPatterns(states, patterns []string) ([]sd.UnitStatus, *dbus.Error) {
	m.s.count("ListUnitsByPatterns")
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	var out []sd.UnitStatus
	for _, u := range m.s.units {
		if u.LoadState == "not-found" {
			continue
		}
		if len(states) > 0 && !contains(states, u.LoadState) && !contains(states, u.ActiveState) && !contains(states, u.SubState) {
			continue
		}
		if len(patterns) > 0 && !matchAny(patterns, u.Name) {
			continue
		}
		out = append(out, sd.UnitStatus{
			Name: u.Name, Description: u.Description, LoadState: u.LoadState,
			ActiveState: u.ActiveState, SubState: u.SubState,
			Path: dbus.ObjectPath(unitPrefix + "/" + sd.PathBusEscape(u.Name)), JobPath: "/",
		})
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

type properties struct{ s *Systemd }

// GetAll implements org.freedesktop.DBus.Properties.GetAll for unit paths.
func (p properties) GetAll(msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	p.s.count("GetAll")
	u, err := p.unit(msg)
	if err != nil {
		return nil, err
	}
	props, ok := p.s.propertyMap(u, iface)
	if !ok {
		return nil, dbus.NewError("org.freedesktop.DBus.Error.UnknownInterface", []any{"Unknown interface " + iface})
	}
	return props, nil
}

// Get implements org.freedesktop.DBus.Properties.Get for unit paths.
func (p properties) Get(msg dbus.Message, iface, name string) (dbus.Variant, *dbus.Error) {
	p.s.count("Get")
	u, err := p.unit(msg)
	if err != nil {
		return dbus.Variant{}, err
	}
	props, ok := p.s.propertyMap(u, iface)
	if !ok {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownInterface", []any{"Unknown interface " + iface})
	}
	v, ok := props[name]
	if !ok {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{"Unknown property " + name})
	}
	return v, nil
}

func (p properties) unit(msg dbus.Message) (Unit, *dbus.Error) {
	hp, ok := msg.Headers[dbus.FieldPath]
	if !ok {
		return Unit{}, dbus.NewError("org.freedesktop.DBus.Error.Failed", []any{"no path"})
	}
	op, _ := hp.Value().(dbus.ObjectPath)
	name, ok := strings.CutPrefix(string(op), unitPrefix+"/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return Unit{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownObject", []any{"Unknown object " + string(op)})
	}
	return p.s.lookup(unescape(name)), nil
}

// unescape reverses sd_bus_path_encode ("herald_2eservice" → "herald.service").
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '_' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// propertyMap is the unit's properties of iface, without the hidden ones.
func (s *Systemd) propertyMap(u Unit, iface string) (map[string]dbus.Variant, bool) {
	props, ok := propertyMap(u, iface)
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.hidden {
		delete(props, name)
	}
	return props, ok
}

func propertyMap(u Unit, iface string) (map[string]dbus.Variant, bool) {
	v := dbus.MakeVariant
	switch iface {
	case ifaceUnit:
		inv := u.InvocationID
		if inv == nil {
			inv = []byte{}
		}
		return map[string]dbus.Variant{
			"Id":                   v(u.Name),
			"Names":                v([]string{u.Name}),
			"Description":          v(u.Description),
			"LoadState":            v(u.LoadState),
			"ActiveState":          v(u.ActiveState),
			"SubState":             v(u.SubState),
			"FragmentPath":         v(u.FragmentPath),
			"NeedDaemonReload":     v(u.NeedDaemonReload),
			"ActiveEnterTimestamp": v(u.ActiveEnterTimestamp),
			"InvocationID":         v(inv),
			"UnitFileState":        v(u.UnitFileState),
		}, true
	case ifaceSvc:
		if !strings.HasSuffix(u.Name, ".service") {
			return nil, false
		}
		return map[string]dbus.Variant{
			"MainPID":         v(u.MainPID),
			"StatusText":      v(u.StatusText),
			"NRestarts":       v(u.NRestarts),
			"Result":          v(u.Result),
			"ExecMainCode":    v(u.ExecMainCode),
			"ExecMainStatus":  v(u.ExecMainStatus),
			"TimeoutStopUSec": v(u.TimeoutStopUSec),
			"WatchdogUSec":    v(u.WatchdogUSec),
		}, true
	}
	return nil, false
}
