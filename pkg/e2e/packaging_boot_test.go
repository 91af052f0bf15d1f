// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/herald"
)

// pkPrevious is the last commit whose packages left herald.service disabled
// (herald started only through its sockets, so a Telegram-only host stayed
// deaf after every reboot). Upgrades from its packages must end with herald
// starting at boot.
const pkPrevious = "da3c97535679c6b8b522486c9c6d70d23a2cf0df"

// pkBuildPrevious builds the .deb and .rpm of pkPrevious into dir, from that
// commit's own sources and scripts/package, with the version that script
// gives it in a git checkout. It returns the version, or "" when this clone
// does not have the commit (a shallow clone).
func pkBuildPrevious(t *testing.T, root, dir string) string {
	t.Helper()
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
		return strings.TrimSpace(string(out)), err
	}
	if _, err := git("cat-file", "-e", pkPrevious+"^{commit}"); err != nil {
		t.Logf("commit %.12s is not in this clone: upgrades from the previous package are not tested", pkPrevious)
		return ""
	}
	count, err := git("rev-list", "--count", pkPrevious)
	if err != nil {
		t.Errorf("git rev-list: %v", err)
		return ""
	}
	epoch, err := git("log", "-1", "--format=%ct", pkPrevious)
	if err != nil {
		t.Errorf("git log: %v", err)
		return ""
	}
	version := "0.0.0~git" + count + "." + pkPrevious[:12]
	src := filepath.Join(dir, "previous-src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Error(err)
		return ""
	}
	if out, err := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", root, pkPrevious, src).CombinedOutput(); err != nil {
		t.Errorf("git archive %.12s: %v %s", pkPrevious, err, out)
		return ""
	}
	bin := filepath.Join(dir, "herald-previous")
	pkGoBuild(t, src, bin, version)
	pkPackage(t, src, []string{"HERALD_BIN=" + bin, "HERALD_VERSION=" + version, "DIST=" + dir, "SOURCE_DATE_EPOCH=" + epoch}, "all")
	if err := os.RemoveAll(src); err != nil {
		t.Error(err)
	}
	return version
}

// logStates logs `systemctl is-enabled` and `is-active` of herald's units.
func (p *pkBox) logStates(when string) {
	p.t.Helper()
	var b strings.Builder
	for _, u := range []string{"herald.service", "herald.socket", "herald-admin.socket"} {
		e, a := p.state(u)
		b.WriteString(" " + u + " " + e + "/" + a)
	}
	p.t.Logf("%s: states %s:%s", p.format, when, b.String())
}

// boot brings herald's units down and the sandbox to multi-user.target the
// way a boot does: the targets are stopped too (stopping a target stops no
// unit it merely wants), so that starting multi-user.target pulls in again
// everything it, basic.target and sockets.target want.
func (p *pkBox) boot() {
	p.t.Helper()
	p.sh("systemctl stop herald.service herald.socket herald-admin.socket multi-user.target basic.target sockets.target")
	p.wantState("herald.service", "", "inactive")
	p.step("simulated boot", "systemctl start multi-user.target")
}

// pkReadmeInstall returns the shell block of the README's install section,
// and fails the test if any other shell block of the README touches the
// credentials (every such command must be run by pkBootLifecycle, or, for
// the migration section, by TestMigrateHermes).
func pkReadmeInstall(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(pkRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var install string
	section := ""
	lines := strings.Split(string(src), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "## ") {
			section = l[3:]
		}
		if !strings.HasPrefix(l, "```") {
			continue
		}
		lang := strings.TrimPrefix(l, "```")
		var block []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			block = append(block, lines[i])
		}
		text := strings.Join(block, "\n") + "\n"
		switch {
		case section == "Installing and running under systemd" && lang == "sh" && install == "":
			install = text
		case section == migrateSection && lang == "sh":
			// Run by TestMigrateHermes.
		case strings.Contains(text, "/etc/herald/credentials"):
			t.Errorf("README, section %q: a shell block outside the install steps touches the credentials, and no test runs it:\n%s", section, text)
		}
	}
	if install == "" {
		t.Fatal("README: no sh block in the section \"Installing and running under systemd\"")
	}
	return install
}

// runReadmeInstall runs the README's install steps as an operator would
// after installing the package, with BOT_TOKEN set and an EDITOR that turns
// on the Telegram section against fake, and checks what they leave: the
// token file root's alone, the token never printed, herald running with the
// new configuration.
func (p *pkBox) runReadmeInstall(fake *telegramtest.Server) {
	t := p.t
	t.Helper()
	block := pkReadmeInstall(t)
	const editor = "/usr/local/sbin/pk-editor"
	script := "#!/bin/sh\n# The operator's edit: the Telegram section on, against the fake Bot API.\n" +
		`sed -i '/^  telegram:/,/^  slack:/ s|^    enabled: false$|    enabled: true\n    allow_all: true\n    api_url: ` + fake.URL + `\n    poll_timeout: 1s|' "$1"` + "\n"
	if err := p.s.WriteFile(editor, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// bash, the operator's shell on Debian and Fedora; -e: every step must
	// succeed.
	stdout, stderr, code, err := p.s.Run(p.ctx, "env", "BOT_TOKEN="+fake.Token, "EDITOR="+editor, "bash", "-e", "-c", block)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: the README's install steps: exit %d in %v; herald doctor said:\n%s", p.format, code, time.Since(start).Round(time.Millisecond), pkDoctorLines(stdout))
	if strings.Contains(stdout+stderr, fake.Token) {
		t.Errorf("%s: the README's install steps print the token", p.format)
	}
	if code != 0 {
		t.Fatalf("%s: the README's install steps: exit %d\n%s\n%s", p.format, code, pkLastLines(stdout, 20), stderr)
	}
	const tok = "/etc/herald/credentials/telegram-token"
	if got := strings.TrimSpace(p.sh("stat -c '%a %U:%G' " + tok)); got != "600 root:root" {
		t.Errorf("%s: %s is %s, want 600 root:root", p.format, tok, got)
	}
	if got := p.sh("cat " + tok); got != fake.Token {
		t.Errorf("%s: %s does not hold exactly the token (%d bytes, want %d)", p.format, tok, len(got), len(fake.Token))
	}
	if !strings.Contains(stdout, pkConf+": valid (1 platforms enabled") {
		t.Errorf("%s: herald check-config did not report the Telegram section on:\n%s", p.format, pkLastLines(stdout, 20))
	}
}

// pkDoctorLines picks herald doctor's lines out of the install steps' output.
func pkDoctorLines(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		for _, r := range []string{"PASS", "WARN", "FAIL"} {
			if strings.HasPrefix(l, r+" ") {
				lines = append(lines, "  "+l)
			}
		}
	}
	return strings.Join(lines, "\n")
}

// waitConnected waits until herald reports platform connected (herald status
// asks the admin socket only while the service is active, so it never starts
// herald itself).
func (p *pkBox) waitConnected(platform string) {
	t := p.t
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, _, code := p.try("herald status --json")
		var doc struct {
			Herald *herald.StatusReport `json:"herald"`
		}
		if code == 0 && json.Unmarshal([]byte(out), &doc) == nil && doc.Herald != nil {
			for _, pr := range doc.Herald.Platforms {
				if pr.Name == platform && pr.Phase == "connected" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not connected within 90s; herald status --json (exit %d):\n%s", p.format, platform, code, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// roundTrip sends a Telegram message through the fake and waits for herald's
// answer (the echo agent's).
func (p *pkBox) roundTrip(fake *telegramtest.Server, text string) {
	p.t.Helper()
	fake.PushText(telegramtest.Chat{ID: 777, Type: "private"}, telegramtest.User{ID: 777, FirstName: "Op"}, text)
	fake.Wait(p.t, 90*time.Second, "the answer to "+text, func() bool {
		for _, m := range fake.Sent() {
			if m.ChatID == "777" && m.Text == "echo: "+text {
				return true
			}
		}
		return false
	})
}

// pkBootLifecycle: the previous package (herald.service disabled by design),
// the upgrade to this one (enabled once), the README's install steps with
// Telegram against its fake, a simulated boot (herald up and polling without
// any request), an administrator's `systemctl disable herald` (doctor and
// status fail, the next boot leaves herald down, an upgrade keeps it
// disabled).
func pkBootLifecycle(t *testing.T, b *pkBuild, format string) {
	p := pkNewBox(t, b, format)
	fake := telegramtest.NewOn(t, p.s.Listen, "")
	install, upgrade := "dpkg -i ", "dpkg -i "
	oldPkg, pkg1, pkg2 := b.debOld, b.deb1, b.deb2
	if format == "rpm" {
		const rpmOpts = " --nodeps --force-debian "
		install, upgrade = "rpm -i"+rpmOpts, "rpm -U"+rpmOpts
		oldPkg, pkg1, pkg2 = b.rpmOld, b.rpm1, b.rpm2
	}

	if oldPkg == "" {
		t.Logf("%s: no previous package: starting from version %s", format, b.v1)
		p.step("install "+b.v1, install+pkShare+"/"+pkg1)
	} else {
		p.step("install the previous package "+b.vOld, install+pkShare+"/"+oldPkg)
		p.logStates("after installing the previous package " + b.vOld)
		p.wantState("herald.service", "disabled", "inactive")
		p.step("upgrade from the previous package to "+b.v1, upgrade+pkShare+"/"+pkg1)
		p.logStates("after upgrading from the previous package to " + b.v1)
	}
	p.wantState("herald.service", "enabled", "active")
	p.wantState("herald.socket", "enabled", "active")
	p.wantState("herald-admin.socket", "enabled", "active")

	p.runReadmeInstall(fake)
	p.waitConnected("telegram")

	// A boot: herald comes up and polls Telegram with no request on its
	// sockets (the test sends none).
	polls := fake.Count("getUpdates")
	p.boot()
	p.logStates("after a simulated boot")
	p.wantState("herald.service", "enabled", "active")
	p.wantState("herald.socket", "enabled", "active")
	p.wantState("herald-admin.socket", "enabled", "active")
	p.waitConnected("telegram")
	fake.Wait(t, 30*time.Second, "a poll after the boot", func() bool { return fake.Count("getUpdates") > polls })
	p.roundTrip(fake, "after the boot")

	// The administrator turns herald's start at boot off: with Telegram on,
	// doctor and status fail and name the fix.
	p.sh("systemctl disable herald")
	p.logStates("after systemctl disable herald")
	out, _, code := p.try("herald doctor")
	if code != herald.ExitFailure || !pkHasLine(out, "FAIL", "start at boot", "telegram needs it running") || !strings.Contains(out, "fix: systemctl enable herald") {
		t.Errorf("%s: herald doctor with herald.service disabled: exit %d, want %d with a FAIL for the start at boot and the fix:\n%s", format, code, herald.ExitFailure, out)
	}
	out, _, code = p.try("herald status")
	if code != 0 || !pkHasLine(out, "FAIL", "start at boot", "telegram needs it running") || !strings.Contains(out, "fix: systemctl enable herald") {
		t.Errorf("%s: herald status with herald.service disabled: exit %d, want 0 with a FAIL line for the start at boot and the fix:\n%s", format, code, out)
	}
	out, _, code = p.try("herald check-config " + pkConf)
	if code != 0 || !strings.Contains(out, "warning: herald.service is disabled") {
		t.Errorf("%s: herald check-config as root with herald.service disabled: exit %d, want 0 with a warning:\n%s", format, code, out)
	}

	// The next boot leaves herald down (the sockets, still enabled, would
	// start it for a request).
	p.boot()
	p.logStates("after a simulated boot with herald disabled")
	p.wantState("herald.service", "disabled", "inactive")
	p.wantState("herald.socket", "enabled", "active")

	// An upgrade keeps the administrator's choice.
	p.step("upgrade to "+b.v2+" with herald disabled", upgrade+pkShare+"/"+pkg2)
	p.logStates("after upgrading to " + b.v2 + " with herald disabled")
	p.wantState("herald.service", "disabled", "inactive")

	// Enabled again: the doctor is content, the next boot brings herald up.
	p.sh("systemctl enable herald")
	p.boot()
	p.wantState("herald.service", "enabled", "active")
	p.waitConnected("telegram")
	out, _, code = p.try("herald doctor")
	if code != 0 || !pkHasLine(out, "PASS", "start at boot", "herald.service is enabled") {
		t.Errorf("%s: herald doctor with herald.service enabled: exit %d, want 0 with a PASS for the start at boot:\n%s", format, code, out)
	}
	p.roundTrip(fake, "after enabling again")
}

// pkHasLine reports whether a line of out has all the parts, in order.
func pkHasLine(out string, parts ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		rest, ok := l, true
		for _, part := range parts {
			i := strings.Index(rest, part)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(part):]
		}
		if ok {
			return true
		}
	}
	return false
}
