// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/paths"
	"github.com/heraldgw/herald/pkg/secret"
	"github.com/heraldgw/herald/pkg/systemd/unitstate"
)

// Options are the flags of `herald status` and `herald doctor`.
type Options struct {
	// ConfigPath is the configuration file; default paths.ConfigFile when
	// it exists, else the built-in default.
	ConfigPath string
	// Unit overrides the configuration's unit name.
	Unit string
	// User asks the user service manager (systemctl --user).
	User bool
	// AdminSocket overrides the configuration's admin socket.
	AdminSocket string
	// CredentialsDir is where LoadCredential= reads secrets from; default
	// paths.CredentialsDir.
	CredentialsDir string
}

func (o *Options) resolve() (*config.Config, error) {
	if o.User {
		o.userDefaults()
	}
	if o.CredentialsDir == "" {
		o.CredentialsDir = paths.CredentialsDir
	}
	path := adminapi.ConfigFile(o.ConfigPath)
	var cfg *config.Config
	var err error
	if path == "" {
		cfg = config.Default()
	} else {
		cfg, err = config.Load(path)
	}
	if cfg != nil {
		if o.Unit == "" {
			o.Unit = cfg.Unit
		}
	}
	if o.AdminSocket == "" {
		o.AdminSocket = adminapi.AdminSocketFor(cfg, path)
	}
	if o.Unit == "" {
		o.Unit = "herald.service"
	}
	o.ConfigPath = path
	return cfg, err
}

// StatusDoc is what `herald status` reports; `herald status --json`
// prints it.
type StatusDoc struct {
	Unit        *unitstate.UnitStatus  `json:"unit,omitempty"`
	UnitError   string                 `json:"unit_error,omitempty"`
	Herald      *adminapi.StatusReport `json:"herald,omitempty"`
	HeraldError string                 `json:"herald_error,omitempty"`
	Running     bool                   `json:"running"`
	// Boot is set when the configuration needs herald running and
	// nothing starts it at boot.
	Boot *Check `json:"boot,omitempty"`
	// UnitName is the unit asked about.
	UnitName string `json:"-"`
}

// Status reads the service state from systemd and herald's own report.
// It needs no privileges: D-Bus unit properties and the admin socket's
// read-only endpoints are open to every local user. doc.Running says
// whether herald answered.
func Status(ctx context.Context, o Options) *StatusDoc {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	o.findManager(ctx)
	cfg, _ := o.resolve() // a broken config still lets status report the unit
	doc := &StatusDoc{UnitName: o.Unit}
	us, err := unitstate.Describe(ctx, o.Unit, o.User)
	if err != nil {
		doc.UnitError = err.Error()
	} else {
		doc.Unit = us
	}
	if c := bootCheck(cfg, us, o.User); c != nil && c.Result == Fail {
		doc.Boot = c
	}
	if reason := notRunning(doc.Unit, o.Unit); reason != "" {
		doc.HeraldError = reason
	} else if rep, err := adminapi.FetchStatus(ctx, o.AdminSocket); err != nil {
		doc.HeraldError = err.Error()
	} else {
		doc.Herald = rep
	}
	doc.Running = doc.Herald != nil
	return doc
}

// notRunning says why herald is not asked over its admin socket: when
// systemd reports the unit stopped, connecting would start herald through
// herald-admin.socket, and a status query must not start the service.
func notRunning(us *unitstate.UnitStatus, unit string) string {
	if us == nil || us.LoadState != "loaded" {
		return ""
	}
	switch us.ActiveState {
	case "inactive", "failed":
		return fmt.Sprintf("not running (%s is %s; not starting it through its socket)", unit, us.ActiveState)
	}
	return ""
}

// DescribeExit says how a unit's main process ended, from systemd's
// ExecMainCode and ExecMainStatus.
func DescribeExit(code, status int32) string {
	switch code {
	case 1:
		return fmt.Sprintf("exited with status %d", status)
	case 2:
		return fmt.Sprintf("killed by signal %d", status)
	case 3:
		return fmt.Sprintf("dumped core (signal %d)", status)
	case 0:
		return "has not exited"
	}
	return fmt.Sprintf("code %d status %d", code, status)
}

// Result is the outcome of one check.
type Result string

// The results of a check.
const (
	Pass Result = "PASS"
	Warn Result = "WARN"
	Fail Result = "FAIL"
	// Skip: could not be checked; the detail says why.
	Skip Result = "SKIP"
)

// Check is one doctor finding. Fix is the advice for a result other than
// Pass.
type Check struct {
	Name   string `json:"name"`
	Result Result `json:"result"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Report is what `herald doctor` found; `herald doctor --json` prints it.
// OK: no check failed.
type Report struct {
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Failed counts the checks that failed.
func (r *Report) Failed() int {
	n := 0
	for _, c := range r.Checks {
		if c.Result == Fail {
			n++
		}
	}
	return n
}

// Doctor runs every check.
func Doctor(ctx context.Context, o Options) *Report {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	o.findManager(ctx)
	cfg, cfgErr := o.resolve()
	var checks []Check
	add := func(c Check) { checks = append(checks, c) }

	// Configuration.
	switch {
	case cfgErr != nil:
		add(Check{"config", Fail, cfgErr.Error(), "fix the lines named above, then `herald check-config " + o.ConfigPath + "`"})
	case o.ConfigPath == "":
		add(Check{"config", Warn, "no configuration file; the built-in demo configuration is in effect", "install " + paths.ConfigFile + " or pass --config"})
	default:
		add(Check{"config", Pass, o.ConfigPath + " is valid", ""})
	}

	// Credentials. The packaged unit loads the whole directory; without it
	// systemd refuses to start herald (243/CREDENTIALS).
	if fi, err := os.Stat(o.CredentialsDir); err != nil {
		add(Check{"credentials directory", Fail, fmt.Sprintf("%s: %v (the unit's LoadCredential= makes the start fail with 243/CREDENTIALS)", o.CredentialsDir, unwrapPathErr(err)),
			"install -d -m 0700 " + o.CredentialsDir})
	} else if fi.Mode().Perm()&0o077 != 0 {
		add(Check{"credentials directory", Warn, fmt.Sprintf("%s is %04o; it should be readable by its owner only", o.CredentialsDir, fi.Mode().Perm()), "chmod 0700 " + o.CredentialsDir})
	} else {
		add(Check{"credentials directory", Pass, o.CredentialsDir, ""})
	}
	if cfg != nil {
		for _, c := range credentialChecks(cfg, o.CredentialsDir, os.Stat) {
			add(c)
		}
	}

	// Units and sockets, as systemd sees them.
	us, err := unitstate.Describe(ctx, o.Unit, o.User)
	if err != nil {
		add(Check{"systemd", Warn, "cannot ask systemd over D-Bus: " + err.Error(), "run on a machine where systemd is PID 1 (or pass --user)"})
	} else {
		for _, c := range unitChecks(ctx, o, us) {
			add(c)
		}
		if c := bootCheck(cfg, us, o.User); c != nil {
			add(*c)
		}
	}

	// Adapters, from herald itself (never starting it to ask).
	var rep *adminapi.StatusReport
	if reason := notRunning(us, o.Unit); reason != "" {
		err = errors.New(reason)
	} else {
		rep, err = adminapi.FetchStatus(ctx, o.AdminSocket)
	}
	if err != nil {
		add(Check{"herald", Warn, err.Error(), "start it: systemctl start herald.socket (the first request starts herald) or systemctl start " + o.Unit})
	} else {
		add(Check{"herald", Pass, fmt.Sprintf("running, pid %d, %s", rep.PID, rep.StatusLine), ""})
		for _, p := range rep.Platforms {
			switch {
			case p.Phase == "fatal":
				add(Check{"platform " + p.Name, Fail, "stopped retrying: " + p.Error, fatalPlatformFix(p.Error, o.Unit)})
			case p.Alarm != "":
				add(alarmCheck(p))
			case p.Phase == "reconnecting":
				add(Check{"platform " + p.Name, Warn, "reconnecting: " + p.Error, "check network access to the platform; herald keeps retrying"})
			default:
				add(Check{"platform " + p.Name, Pass, p.Phase, ""})
			}
		}
		if rep.LastReloadError != "" {
			add(Check{"reload", Fail, "last reload rejected: " + rep.LastReloadError, "fix the file, then systemctl reload " + o.Unit})
		}
		if cfg != nil && len(secretRefs(cfg)) > 0 {
			add(secretsCurrentCheck(secretFiles(cfg, o.CredentialsDir), rep.StartedAt, o.Unit, os.Stat))
		}
	}

	// Platforms herald reaches through a local daemon: does it answer?
	for _, c := range probeChecks(ctx, cfg) {
		add(c)
	}

	// The message store: writable, and room on its file system.
	for _, c := range storeChecks(cfg, o, rep) {
		add(c)
	}

	// Cluster mode: membership, partitions, platforms, NATS.
	for _, c := range clusterChecks(cfg, rep, time.Now()) {
		add(c)
	}

	// Clock against the agent backend.
	if cfg != nil && cfg.Agent.Kind != "echo" && cfg.Agent.URL != "" {
		add(clockCheck(ctx, cfg.Agent.URL))
	}

	if o.User {
		add(lingerCheck())
		checks = forUserManager(checks)
	}

	r := &Report{Checks: checks}
	r.OK = r.Failed() == 0
	return r
}

// alarmCheck is the finding for a platform whose adapter raised an alarm:
// each alarm says another consumer uses the platform's credentials, so the
// fix names the likely cause and the Hermes setting that turns it off.
func alarmCheck(p adminapi.PlatformReport) Check {
	fix := "likely cause: another gateway, e.g. Hermes, is polling this bot. Make sure only one consumer uses this bot token: in Hermes set platforms." + p.Type + ".enabled: false and run hermes gateway restart (herald migrate hermes prints the steps); stop other bots, or delete a webhook set on it"
	if p.Type == "slack" {
		fix = "likely cause: another gateway, e.g. Hermes, holds a Socket Mode connection of this Slack app and gets part of its events. Make sure only herald connects with this app-level token: in Hermes set platforms.slack.enabled: false in config.yaml and run hermes gateway restart (herald migrate hermes prints the steps); stop any other Socket Mode client of the app"
	}
	return Check{"platform " + p.Name, Fail, p.Alarm, fix}
}

// fatalPlatformFix is the advice for a platform that stopped for good. It
// says restart, never reload: systemd copies the credentials into
// $CREDENTIALS_DIRECTORY when the service starts, so a reload cannot see a
// corrected token, and a reload keeps an adapter whose settings did not
// change, failed or not.
func fatalPlatformFix(err, unit string) string {
	if strings.Contains(strings.ToLower(err), "intent") {
		return "enable the privileged intents in the Discord developer portal, then systemctl restart " + unit +
			" (a reload keeps the failed adapter: its settings did not change)"
	}
	return "check the platform's credentials (" + paths.CredentialsDir + ") and permissions, then systemctl restart " + unit +
		" (credentials are read when herald starts; a reload does not re-read them)"
}

func pluralize(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// secretRefs finds every secret reference in the configuration, with its
// key, by walking the decoded structs.
func secretRefs(cfg *config.Config) map[string]secret.Ref {
	out := map[string]secret.Ref{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		if v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				return
			}
			walk(prefix, v.Elem())
			return
		}
		if v.Type() == reflect.TypeOf(secret.Ref{}) {
			if r := v.Interface().(secret.Ref); !r.IsZero() {
				out[prefix] = r
			}
			return
		}
		if v.Kind() != reflect.Struct {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				name = strings.ToLower(f.Name)
			}
			walk(strings.TrimPrefix(prefix+"."+name, "."), v.Field(i))
		}
	}
	walk("agent", reflect.ValueOf(cfg.Agent))
	if cfg.Store.Backend == "nats" {
		walk("store.nats", reflect.ValueOf(cfg.Store.NATS))
	}
	for name, p := range cfg.Platforms {
		if p.IsEnabled() {
			walk("platforms."+name, reflect.ValueOf(p.Settings))
		}
	}
	return out
}

// credentialChecks checks every secret file cfg names. stat is os.Stat
// (a parameter so that a test running as root can see EACCES). A file that
// cannot be looked at for lack of permission is skipped with a note, not
// reported missing: the credentials directory is root's alone, and an
// unprivileged doctor cannot tell whether a file in it exists.
func credentialChecks(cfg *config.Config, credDir string, stat func(string) (os.FileInfo, error)) []Check {
	var out []Check
	svcUser, _ := user.Lookup("herald")
	for _, sf := range secretFiles(cfg, credDir) {
		path := sf.Path
		name := "credential " + sf.Key
		fi, err := stat(path)
		switch {
		case errors.Is(err, fs.ErrPermission):
			out = append(out, Check{name, Skip, fmt.Sprintf("%s: permission denied: this check needs root", path), "run it as root: sudo herald doctor"})
			continue
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, Check{name, Fail, fmt.Sprintf("%s: %v", path, unwrapPathErr(err)), fmt.Sprintf("create %s (mode 0600, owner root) with the secret", path)})
			continue
		case err != nil:
			out = append(out, Check{name, Fail, fmt.Sprintf("%s: %v", path, unwrapPathErr(err)), "make " + path + " a regular file holding the secret"})
			continue
		}
		mode := fi.Mode().Perm()
		switch {
		case fi.Size() == 0:
			out = append(out, Check{name, Fail, path + " is empty", "write the secret into " + path})
		case mode&0o004 != 0:
			out = append(out, Check{name, Fail, fmt.Sprintf("%s is world-readable (%04o)", path, mode), "chmod 600 " + path})
		case !sf.Credential && svcUser != nil && !readableBy(fi, svcUser):
			out = append(out, Check{name, Fail, fmt.Sprintf("%s is not readable by the service user herald (%04o)", path, mode),
				"chgrp herald " + path + " && chmod 640 " + path + ", or move it to " + credDir + " and use {credential: NAME}"})
		default:
			out = append(out, Check{name, Pass, path, ""})
		}
	}
	return out
}

func readableBy(fi os.FileInfo, u *user.User) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := fi.Mode().Perm()
	if strconv.FormatUint(uint64(st.Uid), 10) == u.Uid {
		return mode&0o400 != 0
	}
	if strconv.FormatUint(uint64(st.Gid), 10) == u.Gid {
		return mode&0o040 != 0
	}
	return mode&0o004 != 0
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// journalPatterns are the journal lines that explain a bad stop or start.
var journalPatterns = []string{
	"timed out", "Watchdog timeout", "start request repeated too quickly", "Start request repeated too quickly",
	"status=78", "status=65", "Failed with result", "Killing",
}

func unitChecks(ctx context.Context, o Options, us *unitstate.UnitStatus) []Check {
	var out []Check
	if us.LoadState != "loaded" {
		return append(out, Check{"unit", Fail, fmt.Sprintf("%s LoadState=%s", o.Unit, us.LoadState), "install the herald package (it ships " + o.Unit + ")"})
	}
	if us.NeedDaemonReload {
		out = append(out, Check{"unit", Warn, o.Unit + " changed on disk since systemd loaded it", "systemctl daemon-reload"})
	}
	// verify prints nothing for good units; it exits 0 even on unknown keys.
	if us.FragmentPath != "" {
		if _, err := exec.LookPath("systemd-analyze"); err == nil {
			files := []string{us.FragmentPath}
			for _, s := range []string{"herald.socket", "herald-admin.socket"} {
				p := filepath.Join(filepath.Dir(us.FragmentPath), s)
				if _, err := os.Stat(p); err == nil {
					files = append(files, p)
				}
			}
			args := append([]string{"verify", "--man=no"}, files...)
			if o.User {
				args = append([]string{"--user"}, args...)
			}
			vctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			b, err := exec.CommandContext(vctx, "systemd-analyze", args...).CombinedOutput()
			cancel()
			if msg := strings.TrimSpace(string(b)); msg != "" || err != nil {
				out = append(out, Check{"units verify", Fail, firstLines(msg, 5), "fix the unit files or drop-ins named above (systemctl cat " + o.Unit + ")"})
			} else {
				out = append(out, Check{"units verify", Pass, strings.Join(files, ", "), ""})
			}
		}
	}
	for _, sock := range []string{"herald.socket", "herald-admin.socket"} {
		ss, err := unitstate.Describe(ctx, sock, o.User)
		switch {
		case err != nil:
		case ss.LoadState != "loaded":
			out = append(out, Check{"socket " + sock, Warn, "not installed", "without it herald binds its own listener and restarts refuse connections briefly"})
		case ss.ActiveState == "active":
			out = append(out, Check{"socket " + sock, Pass, ss.SubState, ""})
		case ss.ActiveState == "failed":
			out = append(out, Check{"socket " + sock, Fail, "failed (" + ss.Result + ")",
				"systemctl reset-failed " + sock + " " + o.Unit + " && systemctl start " + sock})
		default:
			out = append(out, Check{"socket " + sock, Fail, ss.ActiveState + " (" + ss.SubState + ")", "systemctl enable --now " + sock})
		}
	}
	switch us.Result {
	case "success", "":
		out = append(out, Check{"last run", Pass, fmt.Sprintf("%s (%s), result %s, %d restarts", us.ActiveState, us.SubState, us.Result, us.NRestarts), ""})
	default:
		fix := "see the journal lines above; journalctl -xu " + o.Unit
		switch us.Result {
		case "exit-code":
			switch us.ExecMainStatus {
			case herald.ExitConfig:
				fix = "the configuration is invalid: herald check-config " + paths.ConfigFile
			case herald.ExitStoreCorrupt:
				fix = "the message store is corrupt: move " + paths.StoreFile + "* away (herald starts with an empty store), then systemctl start " + o.Unit
			case herald.ExitStoreIO:
				fix = "the message store cannot be read or written: check free space, the permissions of " + paths.StateDir + " and the kernel log for I/O errors"
			case herald.ExitRunning:
				fix = "another herald holds the state directory: stop it (pgrep -a herald)"
			case 243:
				fix = "systemd could not load the credentials: install -d -m 0700 " + paths.CredentialsDir
			}
		case "watchdog":
			fix = "herald stopped answering its liveness check; the journal above has the goroutine dump. Report it."
		case "start-limit-hit":
			fix = "systemctl reset-failed " + o.Unit + " herald.socket && systemctl start herald.socket"
		case "timeout":
			fix = "raise TimeoutStopSec= above shutdown.drain_timeout + shutdown.adapter_timeout + 2s (drop-in)"
		}
		out = append(out, Check{"last run", Fail, fmt.Sprintf("result %s, main process %s\n%s", us.Result,
			DescribeExit(us.ExecMainCode, us.ExecMainStatus), journalAround(ctx, o)), fix})
	}
	return out
}

// journalAround returns the unit's recent journal lines that explain a
// failure.
func journalAround(ctx context.Context, o Options) string {
	if _, err := exec.LookPath("journalctl"); err != nil {
		return ""
	}
	// The service manager's own lines about the unit (a SIGABRT's goroutine
	// dump would push them out of a plain tail), then herald's errors.
	var b []byte
	// A user manager is not PID 1: its lines are among the unit's.
	manager := []string{"_PID=1", "-n", "50"}
	if o.User {
		manager = []string{"-n", "50"}
	}
	for _, sel := range [][]string{manager, {"-p", "err", "-n", "20"}} {
		args := append([]string{"-u", o.Unit, "--no-pager", "-o", "short-iso"}, sel...)
		if o.User {
			args = append([]string{"--user"}, args...)
		}
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, _ := exec.CommandContext(jctx, "journalctl", args...).Output()
		cancel()
		b = append(b, out...)
	}
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, p := range journalPatterns {
			if strings.Contains(line, p) {
				keep = append(keep, "    "+line)
				break
			}
		}
	}
	if len(keep) > 8 {
		keep = keep[len(keep)-8:]
	}
	return strings.Join(keep, "\n")
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}

// clockCheck compares the local clock with the agent backend's Date header:
// signatures with timestamps (Standard Webhooks) and token expiry need
// clocks that agree.
func clockCheck(ctx context.Context, base string) Check {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/health", nil)
	if err != nil {
		return Check{"clock", Warn, err.Error(), ""}
	}
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Check{"clock", Warn, "agent backend not reachable: " + err.Error(), "check agent.url and that the backend runs"}
	}
	resp.Body.Close()
	rtt := time.Since(sent)
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return Check{"clock", Warn, "the agent backend sends no Date header", ""}
	}
	skew := date.Sub(sent.Add(rtt / 2)).Round(time.Second)
	switch abs := max(skew, -skew); {
	case abs > time.Minute:
		return Check{"clock", Fail, fmt.Sprintf("%s off the agent backend's clock", skew), "enable time synchronisation (systemd-timesyncd or chrony)"}
	case abs > 5*time.Second:
		return Check{"clock", Warn, fmt.Sprintf("%s off the agent backend's clock", skew), "enable time synchronisation (systemd-timesyncd or chrony)"}
	}
	return Check{"clock", Pass, fmt.Sprintf("within %s of the agent backend", max(skew, -skew)+time.Second), ""}
}

// probeChecks asks each enabled platform whose configuration is an
// adapter.Prober (a local daemon such as signal-cli) whether it answers,
// within 5 s each, in name order.
func probeChecks(ctx context.Context, cfg *config.Config) []Check {
	if cfg == nil {
		return nil
	}
	names := make([]string, 0, len(cfg.Platforms))
	for name := range cfg.Platforms {
		names = append(names, name)
	}
	sort.Strings(names)
	var checks []Check
	for _, name := range names {
		p := cfg.Platforms[name]
		pr, ok := p.Settings.(adapter.Prober)
		if !ok || !p.IsEnabled() {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		detail, err := pr.Probe(pctx)
		cancel()
		if err != nil {
			checks = append(checks, Check{"daemon of " + name, Fail, err.Error(), "start the " + p.Type + " daemon and check its url in the platform's configuration; herald keeps retrying"})
			continue
		}
		checks = append(checks, Check{"daemon of " + name, Pass, detail, ""})
	}
	return checks
}

// bootCheck tells whether herald starts at boot when its configuration
// needs it running. Socket activation starts herald only for a request on
// its own listeners, which is all a passive platform (the webhook) needs;
// every other platform connects out (a long poll, a websocket) and hears
// nothing until herald runs, so herald.service must be enabled. It returns
// nil when there is nothing to judge (no configuration, no unit, a unit
// state systemd does not report).
func bootCheck(cfg *config.Config, us *unitstate.UnitStatus, user bool) *Check {
	if cfg == nil || us == nil || us.UnitFileState == "" {
		return nil
	}
	var need []string
	for name, p := range cfg.Platforms {
		if p.IsEnabled() && adapter.NeedsRunning(p.Type) {
			need = append(need, name)
		}
	}
	sort.Strings(need)
	systemctl := "systemctl "
	if user {
		systemctl = "systemctl --user "
	}
	unit := strings.TrimSuffix(us.Unit, ".service")
	const name = "start at boot"
	state := us.UnitFileState
	switch {
	case state == "enabled" || state == "generated":
		return &Check{name, Pass, us.Unit + " is " + state, ""}
	case len(need) == 0:
		return &Check{name, Pass, fmt.Sprintf("%s is %s; no enabled platform needs herald running (the first request on its socket starts it)", us.Unit, state), ""}
	}
	detail := fmt.Sprintf("%s is %s, so herald does not start at boot, and %s %s it running to receive anything",
		us.Unit, state, strings.Join(need, ", "), pluralize(len(need), "needs", "need"))
	fix := systemctl + "enable " + unit
	switch state {
	case "masked", "masked-runtime":
		fix = systemctl + "unmask " + unit + " && " + fix
	case "enabled-runtime":
		detail = fmt.Sprintf("%s is enabled only until the next boot (enabled-runtime), and %s %s it running to receive anything",
			us.Unit, strings.Join(need, ", "), pluralize(len(need), "needs", "need"))
	}
	return &Check{name, Fail, detail, fix}
}

// bootWarning is bootCheck for `herald check-config`: run by root on a
// machine booted with systemd (not by the service itself), it names the
// failure, else it returns "". It never fails the check: the file is valid.
func bootWarning(ctx context.Context, cfg *config.Config) string {
	if os.Geteuid() != 0 || os.Getenv("INVOCATION_ID") != "" {
		return ""
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	us, err := unitstate.Describe(ctx, cfg.Unit, false)
	if err != nil || us.LoadState == "not-found" {
		return ""
	}
	if c := bootCheck(cfg, us, false); c != nil && c.Result == Fail {
		return c.Detail + "; fix: " + c.Fix
	}
	return ""
}
