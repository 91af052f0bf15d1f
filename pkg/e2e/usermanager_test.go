// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/logging"
)

// userName is the unprivileged user the user-manager tests create in the
// sandbox; its home is /home/herald-e2e.
const userName = "herald-e2e"

// userEnv is a sandbox with a user, its user manager (user@UID.service)
// running, and a persistent journal (journald gives users their own
// journal files only on persistent storage, and `journalctl --user` reads
// only those). Nothing of herald is installed.
type userEnv struct {
	*env
	uid string
}

func newUserEnv(t *testing.T) *userEnv {
	t.Helper()
	e := newBareEnv(t)
	u := &userEnv{env: e}
	u.uid = strings.TrimSpace(e.sh(`useradd --create-home --shell /bin/sh ` + userName + ` >/dev/null && id -u ` + userName))
	// herald's journal catalog, as the package installs it (root's part:
	// a user installation cannot add to the catalog).
	_, file, _, _ := runtime.Caller(0)
	catalog, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "packaging", "herald.catalog"))
	if err != nil {
		t.Fatal(err)
	}
	e.write("/usr/lib/systemd/catalog/herald.catalog", string(catalog))
	e.write("/etc/systemd/journald.conf.d/zz-persistent.conf", "[Journal]\nStorage=persistent\n")
	e.sh(`journalctl --update-catalog && mkdir -p /var/log/journal && systemctl restart systemd-journald && journalctl --flush &&
		systemctl start user@` + u.uid + `.service`)
	u.waitUserManager()
	return u
}

// newBareEnv boots a sandbox with the build shared and nothing installed.
func newBareEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, envOpts{})
	// newEnv installs the system units: take them out again, so that
	// only the user manager has herald.
	e.sh(`rm -f /etc/systemd/system/herald.service /etc/systemd/system/herald.socket /etc/systemd/system/herald-admin.socket /etc/herald/herald.yaml`)
	e.systemctl("daemon-reload")
	return e
}

func (u *userEnv) waitUserManager() {
	u.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, code := u.try(`systemctl --user is-system-running`)
		if code == 0 && strings.TrimSpace(out) == "running" {
			return
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("user manager of %s not running: %q", userName, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// try runs a shell script as the user, in the home directory, with the
// environment a login would give (XDG_RUNTIME_DIR; systemctl --user and
// herald find the user bus from it).
func (u *userEnv) try(script string) (stdout, stderr string, code int) {
	u.t.Helper()
	return u.run("runuser", "-u", userName, "--", "env", "XDG_RUNTIME_DIR=/run/user/"+u.uid,
		"PATH=/home/"+userName+"/.local/bin:/usr/bin:/bin", "sh", "-c", "cd && "+script)
}

// as runs a script as the user and fails the test on a non-zero exit.
func (u *userEnv) as(script string) string {
	u.t.Helper()
	out, errOut, code := u.try(script)
	if code != 0 {
		u.t.Fatalf("as %s: %q: exit %d\nstdout: %s\nstderr: %s", userName, script, code, out, errOut)
	}
	return out + errOut
}

// userShow is `systemctl --user show` of the user's unit.
func (u *userEnv) userShow(unit string, props ...string) map[string]string {
	u.t.Helper()
	out := u.as("systemctl --user show " + unit + " -p " + strings.Join(props, ","))
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func (u *userEnv) waitUserProps(unit string, want map[string]string, timeout time.Duration) map[string]string {
	u.t.Helper()
	return pollProps(u.t, u.userShow, unit, want, timeout)
}

// userJournal is `journalctl --user -u unit` as the user: the user's own
// journal, read without privileges.
func (u *userEnv) userJournal(unit string, match map[string]string) []map[string]any {
	u.t.Helper()
	args := []string{"journalctl", "--user", "--no-pager", "-o", "json", "-u", unit}
	for k, v := range match {
		args = append(args, "'"+strings.ReplaceAll(k+"="+v, "'", `'\''`)+"'")
	}
	out := u.as(strings.Join(args, " "))
	var entries []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var e map[string]any
		if line := sc.Bytes(); len(line) > 0 && line[0] == '{' && json.Unmarshal(line, &e) == nil {
			entries = append(entries, e)
		}
	}
	return entries
}

func (u *userEnv) waitUserJournal(unit string, match map[string]string, timeout time.Duration) map[string]any {
	u.t.Helper()
	return pollJournal(u.t, u.userJournal, unit, match, timeout)
}

func (u *userEnv) writeUserConfig(cfg string) {
	u.t.Helper()
	u.write("/home/"+userName+"/.config/herald/herald.yaml", cfg)
	u.sh("chown " + userName + ": /home/" + userName + "/.config/herald/herald.yaml")
}

// The user-manager suite: herald installed by an unprivileged user with
// `herald install --user`, through its lifecycle under user@UID.service,
// and uninstalled. Steps share one sandbox and run in order.
func TestUserManager(t *testing.T) {
	u := newUserEnv(t)
	home := "/home/" + userName
	show := func(props ...string) map[string]string { return u.userShow("herald.service", props...) }
	running := map[string]string{"ActiveState": "active", "SubState": "running"}

	t.Run("install", func(t *testing.T) {
		out := u.as(guestBinary + " install --user")
		for _, want := range []string{"installed " + home + "/.local/bin/herald", "wrote the starter configuration",
			"enabled and started", "loginctl enable-linger " + userName} {
			if !strings.Contains(out, want) {
				t.Errorf("install output lacks %q:\n%s", want, out)
			}
		}
		// `systemctl start` of a Type=notify unit returns at READY=1.
		st := show("ActiveState", "SubState", "Type", "NotifyAccess", "WatchdogUSec", "TimeoutStopUSec", "StatusText", "UnitFileState", "FragmentPath")
		if st["ActiveState"] != "active" || st["Type"] != "notify" || st["NotifyAccess"] != "main" || st["WatchdogUSec"] != "30s" ||
			st["TimeoutStopUSec"] != "45s" || !strings.HasPrefix(st["StatusText"], "ready:") || st["UnitFileState"] != "enabled" ||
			st["FragmentPath"] != home+"/.config/systemd/user/herald.service" {
			t.Fatalf("after install: %v", st)
		}
		u.waitUserJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgReady}, 10*time.Second)
		// The user manager's own view of the hardening: exposure ≤ 1.5, as
		// units-check measures offline.
		if out, errOut, code := u.try("systemd-analyze --user security --threshold=15 --no-pager herald.service"); code != 0 {
			t.Errorf("systemd-analyze --user security: exit %d\n%s%s", code, out, errOut)
		} else if i := strings.LastIndex(out, "Overall exposure level"); i >= 0 {
			t.Logf("user manager: %s", strings.TrimSpace(out[i:]))
		}
		// State in ~/.local/state/herald, the admin socket in
		// $XDG_RUNTIME_DIR/herald, both the user's alone.
		u.as(`test -f .local/state/herald/herald.db && test -S /run/user/` + u.uid + `/herald/admin.sock &&
			test "$(stat -c %a .local/state/herald .config/herald/credentials)" = "700
700"`)
	})

	t.Run("install again keeps the configuration", func(t *testing.T) {
		pid := show("MainPID")["MainPID"]
		u.writeUserConfig(defaultConfig)
		out := u.as("herald install --user")
		if !strings.Contains(out, "kept your configuration") {
			t.Errorf("second install:\n%s", out)
		}
		if got := u.as("cat .config/herald/herald.yaml"); got != defaultConfig {
			t.Fatalf("the second install changed the configuration:\n%s", got)
		}
		// Nothing changed: the running instance is left alone.
		if now := show("MainPID")["MainPID"]; now != pid {
			t.Fatalf("MainPID %s became %s: an unchanged install restarted herald", pid, now)
		}
	})

	t.Run("reload", func(t *testing.T) {
		// The starter configuration has no platform: the webhook route
		// appears with the reload that applies the edited file.
		if code, _, err := u.post("before-reload", "c1", "hi", 0); err != nil || code != http.StatusNotFound {
			t.Fatalf("webhook before the reload: %d %v, want 404", code, err)
		}
		pid := show("MainPID")["MainPID"]
		u.as("systemctl --user reload herald.service")
		if code, body, err := u.post("after-reload", "c1", "hello", 10*time.Second); err != nil || code != http.StatusOK || !strings.Contains(body, "echo: hello") {
			t.Fatalf("webhook after the reload: %d %q %v", code, body, err)
		}
		if st := show("MainPID", "ActiveState"); st["MainPID"] != pid || st["ActiveState"] != "active" {
			t.Fatalf("after the reload: %v (MainPID was %s)", st, pid)
		}
		u.waitUserJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgReloadAccepted}, 10*time.Second)
		// `herald reload` by hand finds the user instance's admin socket.
		if out := u.as("herald reload"); !strings.Contains(out, "reloaded") {
			t.Fatalf("herald reload: %s", out)
		}
	})

	t.Run("status and doctor find the user service", func(t *testing.T) {
		out := u.as("herald status")
		if !strings.Contains(out, "herald.service: active (running)") || !strings.Contains(out, "webhook") {
			t.Fatalf("herald status:\n%s", out)
		}
		out, errOut, code := u.try("herald doctor --json")
		var doc doctorDoc
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("herald doctor --json: exit %d %v\n%s%s", code, err, out, errOut)
		}
		if failed := doc.failed(); len(failed) > 0 || code != 0 {
			t.Fatalf("doctor: exit %d, failed %v\n%s", code, failed, out)
		}
		if c := doc.find("linger"); c == nil || c.Result != "WARN" || c.Fix != "loginctl enable-linger "+userName {
			t.Fatalf("doctor's linger check: %+v", c)
		}
		if c := doc.find("units verify"); c == nil || c.Result != "PASS" {
			t.Fatalf("doctor's units verify: %+v", c)
		}
		// With lingering on (what `loginctl enable-linger` records),
		// doctor says so.
		u.sh("mkdir -p /var/lib/systemd/linger && touch /var/lib/systemd/linger/" + userName)
		out, _, _ = u.try("herald doctor --json")
		doc = doctorDoc{}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		if c := doc.find("linger"); c == nil || c.Result != "PASS" {
			t.Fatalf("doctor's linger check with lingering on: %+v", c)
		}
	})

	t.Run("manual run refused", func(t *testing.T) {
		pid := show("MainPID")["MainPID"]
		out, errOut, code := u.try("herald run --config .config/herald/herald.yaml")
		if code != herald.ExitRunning {
			t.Fatalf("manual herald run: exit %d, want %d\n%s%s", code, herald.ExitRunning, out, errOut)
		}
		for _, want := range []string{"herald.service", "MainPID " + pid, "user bus", "systemctl --user restart herald.service"} {
			if !strings.Contains(out+errOut, want) {
				t.Errorf("refusal does not mention %q:\n%s%s", want, out, errOut)
			}
		}
		if now := show("MainPID")["MainPID"]; now != pid {
			t.Fatalf("MainPID changed from %s to %s", pid, now)
		}
	})

	t.Run("restart under load", func(t *testing.T) {
		l := u.throughRestarts(20, func() (string, error) {
			out, errOut, code := u.try("systemctl --user restart herald.service")
			if code != 0 {
				return out + errOut, fmt.Errorf("exit %d", code)
			}
			return "", nil
		})
		t.Logf("user manager: %s", l)
		l.check(t)
		u.waitUserProps("herald.service", running, 10*time.Second)
	})

	t.Run("bounded stop with a hung adapter", func(t *testing.T) {
		u.writeUserConfig(defaultConfig + "  stuck:\n    type: fault\n    allow_all: true\n    hang_stop: true\n")
		u.as("systemctl --user reload herald.service")
		before := show("InvocationID")["InvocationID"]
		begin := time.Now()
		u.as("systemctl --user restart herald.service")
		took := time.Since(begin)
		t.Logf("user manager: restart with a hung adapter took %v (bound: adapter_timeout 2s + 2s)", took.Round(time.Millisecond))
		if took > 4*time.Second || took < 2*time.Second {
			t.Fatalf("restart took %v, want between adapter_timeout 2s and 2s + 2s", took)
		}
		u.waitUserProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running", "Result": "success"}, 10*time.Second)
		u.waitUserJournal("herald.service", map[string]string{
			"MESSAGE_ID": logging.MsgAdapterStopTimeout, "PLATFORM": "stuck", "_SYSTEMD_INVOCATION_ID": before,
		}, 10*time.Second)
		u.writeUserConfig(defaultConfig)
		u.as("systemctl --user reload herald.service")
	})

	t.Run("listen address by drop-in", func(t *testing.T) {
		dropIn := home + "/.config/systemd/user/herald.socket.d"
		u.write(dropIn+"/listen.conf", "[Socket]\nListenStream=\nListenStream=127.0.0.1:9000\n")
		u.sh("chown -R " + userName + ": " + dropIn)
		u.as("systemctl --user daemon-reload && systemctl --user restart herald.socket herald.service")
		if resp, err := u.http.Get("http://127.0.0.1:9000/healthz"); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz on the drop-in's port: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		if resp, err := u.http.Get("http://127.0.0.1:8089/healthz"); err == nil {
			resp.Body.Close()
			t.Fatal("127.0.0.1:8089 still answers with the drop-in in place")
		}
		u.sh("rm -r " + dropIn)
		u.as("systemctl --user daemon-reload && systemctl --user restart herald.socket herald.service")
		u.waitUserProps("herald.service", running, 10*time.Second)
	})

	t.Run("watchdog", func(t *testing.T) {
		// A drop-in of the user's own: uninstall must keep it.
		u.write(home+"/.config/systemd/user/herald.service.d/e2e.conf", "[Service]\nWatchdogSec=2s\nRestartSec=100ms\nTimeoutAbortSec=5s\n")
		u.writeUserConfig(defaultConfig + "fault:\n  wedge_main_loop_after: 1s\n")
		u.sh("chown -R " + userName + ": " + home + "/.config/systemd/user/herald.service.d")
		u.as("systemctl --user daemon-reload && systemctl --user restart herald.service")
		first := show("InvocationID")["InvocationID"]
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := show("NRestarts", "InvocationID")
			if st["NRestarts"] != "0" && st["InvocationID"] != first {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no watchdog restart within 30s: %v", st)
			}
			time.Sleep(100 * time.Millisecond)
		}
		j := u.as("journalctl --user -u herald.service --no-pager -o cat")
		for _, want := range []string{"Watchdog timeout (limit 2s)!", "with signal SIGABRT", "Failed with result 'watchdog'"} {
			if !strings.Contains(j, want) {
				t.Errorf("the user's journal lacks %q", want)
			}
		}
		u.writeUserConfig(defaultConfig)
		u.as("systemctl --user restart herald.service")
		u.waitUserProps("herald.service", running, 15*time.Second)
	})

	t.Run("journal", func(t *testing.T) {
		inv := show("InvocationID")["InvocationID"]
		for _, id := range []string{logging.MsgStarting, logging.MsgReady} {
			entry := u.waitUserJournal("herald.service", map[string]string{"MESSAGE_ID": id, "_SYSTEMD_INVOCATION_ID": inv}, 10*time.Second)
			if entry["PRIORITY"] != "6" || entry["COMPONENT"] != "daemon" || entry["SYSLOG_IDENTIFIER"] != "herald" || entry["_SYSTEMD_USER_UNIT"] != "herald.service" {
				t.Errorf("entry %s: %v", id, entry)
			}
		}
		// herald confirmed its unit over the user bus (the single-instance
		// guard asks the manager that runs it).
		u.waitUserJournal("herald.service", map[string]string{"MESSAGE": "running as systemd unit", "BUS": "user", "_SYSTEMD_INVOCATION_ID": inv}, 10*time.Second)
		// -x adds the catalog's explanation to herald's own entries.
		if out := u.as("journalctl --user -xu herald.service --no-pager"); !strings.Contains(out, "Subject: herald is ready: listeners bound, dispatcher accepting") {
			t.Errorf("journalctl --user -xu herald.service shows no catalog text for READY")
		}
	})

	t.Run("system state directory refused", func(t *testing.T) {
		u.writeUserConfig("state_dir: /var/lib/herald\n" + defaultConfig)
		if out, errOut, code := u.try("systemctl --user restart herald.service"); code == 0 {
			t.Fatalf("a user service on /var/lib/herald started:\n%s%s", out, errOut)
		}
		st := show("ActiveState", "Result", "ExecMainStatus")
		if st["ActiveState"] != "failed" || st["ExecMainStatus"] != fmt.Sprint(herald.ExitConfig) {
			t.Fatalf("after starting on the system's state directory: %v, want failed with status 78 (no restart loop)", st)
		}
		entry := u.waitUserJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgConfigInvalid}, 10*time.Second)
		if msg, _ := entry["MESSAGE"].(string); !strings.Contains(msg, "/var/lib/herald belongs to the system service") {
			t.Fatalf("journal: %q", msg)
		}
		u.writeUserConfig(defaultConfig)
		u.as("systemctl --user reset-failed herald.service && systemctl --user start herald.service")
	})

	t.Run("uninstall", func(t *testing.T) {
		out := u.as("herald uninstall --user")
		for _, want := range []string{"stopped and disabled", "Left in place", home + "/.config/herald", home + "/.local/state/herald",
			home + "/.config/systemd/user/herald.service.d"} {
			if !strings.Contains(out, want) {
				t.Errorf("uninstall output lacks %q:\n%s", want, out)
			}
		}
		// What is left: the configuration, the credentials directory,
		// the state and the user's drop-in, nothing else of herald.
		left := u.as(`find .config .local /run/user/` + u.uid + ` -path '*herald*' 2>/dev/null | sort`)
		want := strings.Join([]string{
			".config/herald", ".config/herald/credentials", ".config/herald/herald.yaml",
			".config/systemd/user/herald.service.d", ".config/systemd/user/herald.service.d/e2e.conf",
			".local/state/herald",
		}, "\n")
		var got []string
		for _, p := range strings.Split(strings.TrimSpace(left), "\n") {
			if !strings.HasPrefix(p, ".local/state/herald/") { // the store's own files
				got = append(got, p)
			}
		}
		if strings.Join(got, "\n") != want {
			t.Fatalf("left after uninstall:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
		}
		u.as("test -f .local/state/herald/herald.db")
		if st := show("LoadState", "ActiveState"); st["LoadState"] != "not-found" || st["ActiveState"] != "inactive" {
			t.Fatalf("herald.service after uninstall: %v", st)
		}
		if units := u.as("systemctl --user list-units --all --plain --no-legend 'herald*'"); strings.TrimSpace(units) != "" {
			t.Fatalf("units left loaded:\n%s", units)
		}
		if _, err := u.http.Get("http://127.0.0.1:8089/healthz"); err == nil {
			t.Fatal("127.0.0.1:8089 still answers after uninstall")
		}
	})
}
