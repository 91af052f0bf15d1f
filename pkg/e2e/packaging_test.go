// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/heraldgw/herald/pkg/adapter"
	_ "github.com/heraldgw/herald/pkg/adapter/all"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/testsupport/systemdbox"
)

// The packaging tests build the .deb and .rpm once per run with
// scripts/package (what `make deb rpm` runs) and take each through install,
// first request, upgrade under load, removal, purge and reinstallation in a
// throw-away systemd (one sandbox per format), plus lintian and rpmlint; and,
// in a sandbox of its own per format, from the previous package through an
// upgrade, the README's install commands and simulated boots
// (packaging_boot_test.go).

// pkRoot is the module root.
func pkRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// pkBuild is one run's packages: version 1 and a higher version 2 of each
// format, and version 1 built a second time to check reproducibility; and
// the previous package, built from pkPrevious.
type pkBuild struct {
	dir                    string // shared read-only into the sandboxes
	v1, v2                 string // package versions (without the release)
	deb1, deb2, rpm1, rpm2 string // file names in dir
	reproDir               string // the second build of version 1
	// vOld is the previous package's version, lower than v1; empty (and
	// no files) when this clone lacks pkPrevious.
	vOld, debOld, rpmOld string
}

// pkPackage runs scripts/package with extra environment and returns its output.
func pkPackage(t *testing.T, root string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(root, "scripts", "package"), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/package %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// pkGoBuild builds herald as `make build` does, with version v.
func pkGoBuild(t *testing.T, root, out, v string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-s -w -X github.com/heraldgw/herald/pkg/version.Version="+v,
		"-o", out, "./cmd/herald")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
}

func pkBuildAll(t *testing.T) *pkBuild {
	t.Helper()
	root := pkRoot(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &pkBuild{dir: dir, reproDir: filepath.Join(dir, "repro")}
	start := time.Now()
	b.v1 = pkPackage(t, root, nil, "version")
	b.v2 = b.v1 + "+upgrade"
	bin1, bin2 := filepath.Join(dir, "herald-1"), filepath.Join(dir, "herald-2")
	pkGoBuild(t, root, bin1, b.v1)
	pkGoBuild(t, root, bin2, b.v2)
	t.Logf("built herald %s and %s in %v", b.v1, b.v2, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.vOld = pkBuildPrevious(t, root, dir)
	}()
	for _, job := range []struct{ bin, v, dist string }{
		{bin1, b.v1, dir}, {bin2, b.v2, dir}, {bin1, b.v1, b.reproDir},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkPackage(t, root, []string{"HERALD_BIN=" + job.bin, "HERALD_VERSION=" + job.v, "DIST=" + job.dist}, "all")
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("built 6 packages and the previous ones in %v", time.Since(start).Round(time.Millisecond))
	if b.vOld != "" {
		b.debOld = "herald_" + b.vOld + "-1_amd64.deb"
		b.rpmOld = "herald-" + b.vOld + "-1.x86_64.rpm"
	}
	b.deb1 = "herald_" + b.v1 + "-1_amd64.deb"
	b.deb2 = "herald_" + b.v2 + "-1_amd64.deb"
	b.rpm1 = "herald-" + b.v1 + "-1.x86_64.rpm"
	b.rpm2 = "herald-" + b.v2 + "-1.x86_64.rpm"
	for _, f := range []string{b.deb1, b.deb2, b.rpm1, b.rpm2, b.debOld, b.rpmOld} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("scripts/package did not write %s: %v", f, err)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(root, "packaging", "rpmlint.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rpmlint.toml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPackages builds the packages and checks them: contents, versions,
// reproducibility, lintian, and the whole lifecycle of each format under a
// real systemd.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("packaging: skipped in -short mode (builds packages, boots systemd)")
	}
	for _, tool := range []string{"dpkg-deb", "rpm", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("packaging: %s not installed (make deps installs it)", tool)
		}
	}
	start := time.Now()
	b := pkBuildAll(t)
	t.Cleanup(func() { t.Logf("packaging tests took %v", time.Since(start).Round(time.Millisecond)) })

	t.Run("versions", func(t *testing.T) { pkCheckVersions(t, b) })
	t.Run("reproducible", func(t *testing.T) {
		for _, f := range []string{b.deb1, b.rpm1} {
			x, err := os.ReadFile(filepath.Join(b.dir, f))
			if err != nil {
				t.Fatal(err)
			}
			y, err := os.ReadFile(filepath.Join(b.reproDir, f))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(x, y) {
				t.Errorf("%s: two builds from the same inputs differ", f)
			}
		}
	})
	t.Run("deb-contents", func(t *testing.T) { pkCheckDebContents(t, b) })
	t.Run("rpm-contents", func(t *testing.T) { pkCheckRPMContents(t, b) })
	t.Run("lifecycle", func(t *testing.T) {
		t.Run("lintian", func(t *testing.T) {
			t.Parallel()
			pkLintian(t, b)
		})
		t.Run("deb", func(t *testing.T) {
			t.Parallel()
			pkDebLifecycle(t, b)
		})
		t.Run("rpm", func(t *testing.T) {
			t.Parallel()
			pkRPMLifecycle(t, b)
		})
		t.Run("deb-boot", func(t *testing.T) {
			t.Parallel()
			pkBootLifecycle(t, b, "deb")
		})
		t.Run("rpm-boot", func(t *testing.T) {
			t.Parallel()
			pkBootLifecycle(t, b, "rpm")
		})
	})
}

func pkCheckVersions(t *testing.T, b *pkBuild) {
	pairs := [][2]string{{b.v1, b.v2}}
	if b.vOld != "" {
		pairs = append(pairs, [2]string{b.vOld, b.v1})
	}
	for _, p := range pairs {
		older, newer := p[0]+"-1", p[1]+"-1"
		if out, err := exec.Command("dpkg", "--compare-versions", newer, "gt", older).CombinedOutput(); err != nil {
			t.Errorf("dpkg: %s is not newer than %s: %v %s", newer, older, err, out)
		}
		out, err := exec.Command("rpm", "--eval", fmt.Sprintf("%%{lua: print(rpm.vercmp(%q, %q))}", newer, older)).Output()
		if err != nil || strings.TrimSpace(string(out)) != "1" {
			t.Errorf("rpm: %s is not newer than %s: %q %v", newer, older, out, err)
		}
	}
	deb, err := exec.Command("dpkg-deb", "-f", filepath.Join(b.dir, b.deb1), "Version").Output()
	if err != nil || strings.TrimSpace(string(deb)) != b.v1+"-1" {
		t.Errorf("deb Version %q (%v), want %s-1", deb, err, b.v1)
	}
	rpmv, err := exec.Command("rpm", "-qp", "--qf", "%{VERSION}-%{RELEASE} %{BUILDHOST}", filepath.Join(b.dir, b.rpm1)).Output()
	if err != nil || string(rpmv) != b.v1+"-1 herald-build" {
		t.Errorf("rpm VERSION-RELEASE BUILDHOST %q (%v), want %s-1 herald-build", rpmv, err, b.v1)
	}
}

// pkExpected lists what both packages install, by path, with the mode.
func pkExpected(unitDir string) map[string]string {
	return map[string]string{
		"/usr/bin/herald":                                 "-rwxr-xr-x",
		unitDir + "/herald.service":                       "-rw-r--r--",
		unitDir + "/herald.socket":                        "-rw-r--r--",
		unitDir + "/herald-admin.socket":                  "-rw-r--r--",
		"/usr/lib/sysusers.d/herald.conf":                 "-rw-r--r--",
		"/usr/lib/systemd/catalog/herald.catalog":         "-rw-r--r--",
		"/etc/herald/herald.yaml":                         "-rw-r--r--",
		"/etc/herald/credentials":                         "drwx------",
		"/usr/share/man/man8/herald.8.gz":                 "-rw-r--r--",
		"/usr/share/doc/herald/copyright":                 "", // deb only
		"/usr/share/lintian/overrides/herald":             "",
		"/usr/lib/systemd/system-preset/50-herald.preset": "", // rpm only

		// The optional metrics socket and the operations pack.
		unitDir + "/herald-metrics.socket":                   "-rw-r--r--",
		"/usr/share/herald/monitoring/herald.rules.yml":      "-rw-r--r--",
		"/usr/share/herald/monitoring/herald_rules.test.yml": "-rw-r--r--",
		"/usr/share/herald/monitoring/herald-dashboard.json": "-rw-r--r--",
		"/usr/share/herald/monitoring/metrics.md":            "-rw-r--r--",

		// The example configuration of a cluster node.
		"/usr/share/herald/examples/cluster-node.yaml": "-rw-r--r--",
	}
}

var pkDebListRE = regexp.MustCompile(`^([-dl][rwxsStT-]{9}) (\S+)/(\S+)\s+\d+ \S+ \S+ \.(/\S*?)/?$`)

func pkCheckDebContents(t *testing.T, b *pkBuild) {
	deb := filepath.Join(b.dir, b.deb1)
	out, err := exec.Command("dpkg-deb", "-c", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		m := pkDebListRE.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("unexpected dpkg-deb -c line %q", l)
			continue
		}
		if m[2] != "root" && m[2] != "0" || m[3] != "root" && m[3] != "0" {
			t.Errorf("%s is owned by %s:%s, want root", m[4], m[2], m[3])
		}
		got[m[4]] = m[1]
	}
	want := pkExpected("/lib/systemd/system")
	want["/usr/share/doc/herald/copyright"] = "-rw-r--r--"
	want["/usr/share/lintian/overrides/herald"] = "-rw-r--r--"
	want["/usr/share/doc/herald/changelog.Debian.gz"] = "-rw-r--r--"
	delete(want, "/usr/lib/systemd/system-preset/50-herald.preset")
	for p, mode := range want {
		if got[p] != mode {
			t.Errorf("deb: %s: mode %q, want %q", p, got[p], mode)
		}
	}
	for p, mode := range got {
		if _, ok := want[p]; !ok && mode[0] != 'd' {
			t.Errorf("deb: unexpected file %s", p)
		}
	}
	conf, err := exec.Command("dpkg-deb", "-f", deb, "Depends").Output()
	if err != nil || !strings.Contains(string(conf), "init-system-helpers") {
		t.Errorf("deb Depends %q (%v) lacks init-system-helpers", conf, err)
	}
	ctl := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-e", deb, ctl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v %s", err, out)
	}
	if c, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); strings.TrimSpace(string(c)) != "/etc/herald/herald.yaml" {
		t.Errorf("conffiles = %q, want /etc/herald/herald.yaml", c)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		c, err := os.ReadFile(filepath.Join(ctl, s))
		if err != nil {
			t.Errorf("no %s: %v", s, err)
			continue
		}
		for i, l := range strings.Split(string(c), "\n") {
			if strings.Contains(l, "systemctl ") && !strings.Contains(l, "daemon-reload") && !strings.HasPrefix(strings.TrimSpace(l), "#") {
				t.Errorf("%s:%d calls systemctl (use deb-systemd-helper/-invoke): %s", s, i+1, l)
			}
		}
	}
	pkCheckManPage(t, deb, "deb")
}

func pkCheckRPMContents(t *testing.T, b *pkBuild) {
	rpm := filepath.Join(b.dir, b.rpm1)
	out, err := exec.Command("rpm", "-qp", "--qf", `[%{FILEMODES:perms} %{FILEFLAGS:fflags} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]`, rpm).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	flags := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 { // no flags
			f = []string{f[0], "", f[1], f[2]}
		}
		if len(f) != 4 {
			t.Errorf("unexpected rpm line %q", l)
			continue
		}
		if f[2] != "root:root" {
			t.Errorf("%s is owned by %s", f[3], f[2])
		}
		got[f[3]], flags[f[3]] = f[0], f[1]
	}
	want := pkExpected("/usr/lib/systemd/system")
	delete(want, "/usr/share/doc/herald/copyright")
	delete(want, "/usr/share/lintian/overrides/herald")
	want["/usr/lib/systemd/system-preset/50-herald.preset"] = "-rw-r--r--"
	want["/usr/share/licenses/herald/copyright"] = "-rw-r--r--"
	want["/etc/herald"] = "drwxr-xr-x"
	// The operations pack's directories belong to the package.
	want["/usr/share/herald"] = "drwxr-xr-x"
	want["/usr/share/herald/monitoring"] = "drwxr-xr-x"
	want["/usr/share/herald/examples"] = "drwxr-xr-x"
	for p, mode := range want {
		if got[p] != mode {
			t.Errorf("rpm: %s: mode %q, want %q", p, got[p], mode)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("rpm: unexpected file %s", p)
		}
	}
	if flags["/etc/herald/herald.yaml"] != "cn" {
		t.Errorf("rpm: herald.yaml flags %q, want cn (%%config(noreplace))", flags["/etc/herald/herald.yaml"])
	}
	if flags["/usr/share/man/man8/herald.8.gz"] != "d" {
		t.Errorf("rpm: herald.8.gz flags %q, want d (%%doc)", flags["/usr/share/man/man8/herald.8.gz"])
	}
	scripts, err := exec.Command("rpm", "-qp", "--scripts", rpm).Output()
	if err != nil {
		t.Fatal(err)
	}
	sysusers, err := os.ReadFile(filepath.Join(pkRoot(t), "units", "herald.sysusers"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(scripts), strings.TrimSpace(string(sysusers))+"\n") {
		t.Errorf("rpm %%pre lacks the sysusers line %q:\n%s", sysusers, scripts)
	}
	for _, s := range []string{"preinstall scriptlet", "postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet"} {
		if !strings.Contains(string(scripts), s) {
			t.Errorf("rpm has no %s", s)
		}
	}
	cl, err := exec.Command("rpm", "-qp", "--changelog", rpm).Output()
	if err != nil || !strings.Contains(string(cl), b.v1+"-1") {
		t.Errorf("rpm %%changelog does not name %s-1 (%v):\n%s", b.v1, err, cl)
	}
	pkCheckManPage(t, rpm, "rpm")
}

// pkCheckManPage extracts herald.8.gz from a package (to standard output:
// never rpm2cpio | cpio -id, which would write nfpm's absolute member names,
// /usr/…, into the host's /) and formats it with warnings on, as lintian
// does.
func pkCheckManPage(t *testing.T, pkg, format string) {
	t.Helper()
	page := filepath.Join(t.TempDir(), "herald.8.gz")
	extract := `dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/share/man/man8/herald.8.gz >"$2"`
	if format == "rpm" {
		extract = `rpm2cpio "$1" | cpio --quiet -i --to-stdout '*/man8/herald.8.gz' >"$2"`
	}
	if out, err := exec.Command("sh", "-c", extract, "sh", pkg, page).CombinedOutput(); err != nil {
		t.Fatalf("%s: extract herald.8.gz: %v %s", format, err, out)
	}
	if fi, err := os.Stat(page); err != nil || fi.Size() < 1000 {
		t.Fatalf("%s: herald.8.gz missing or too small (%v)", format, err)
	}
	if _, err := exec.LookPath("man"); err != nil {
		return
	}
	c := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", page)
	c.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MANROFFSEQ=", "MANWIDTH=80")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("%s: man --warnings herald.8.gz: %v\n%s", format, err, stderr.String())
	}
}

func pkLintian(t *testing.T, b *pkBuild) {
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Skip("lintian not installed (make deps installs it)")
	}
	start := time.Now()
	// Not --show-overrides: lintian 2.116 then counts overridden tags for
	// --fail-on.
	cmd := exec.Command("lintian", "--fail-on", "error,warning", "--pedantic", "-I", "-E", filepath.Join(b.dir, b.deb1))
	out, err := cmd.CombinedOutput()
	t.Logf("lintian (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Errorf("lintian --fail-on error,warning: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			t.Errorf("lintian: %s", l)
		}
	}
}

// pkBox is a sandbox in which a package is installed.
type pkBox struct {
	t        *testing.T
	s        *systemdbox.Sandbox
	ctx      context.Context
	b        *pkBuild
	unitDir  string
	format   string
	fresh    *http.Client // one connection per request
	reusable *http.Client // keep-alive
}

const (
	pkHealthz = "http://127.0.0.1:8089/healthz"
	pkConf    = "/etc/herald/herald.yaml"
	pkEdit    = "# edited by the packaging test: must survive upgrades"
	pkShare   = "/srv/herald-test"
)

func pkNewBox(t *testing.T, b *pkBuild, format string) *pkBox {
	t.Helper()
	start := time.Now()
	s := systemdbox.New(t, systemdbox.Options{Shares: []systemdbox.Share{{Host: b.dir, Guest: pkShare}}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	p := &pkBox{t: t, s: s, ctx: ctx, b: b, format: format, unitDir: "/lib/systemd/system"}
	if format == "rpm" {
		p.unitDir = "/usr/lib/systemd/system"
	}
	p.fresh = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: s.DialContext, DisableKeepAlives: true}}
	p.reusable = s.HTTPClient()
	p.reusable.Timeout = 15 * time.Second
	t.Cleanup(func() { p.reusable.CloseIdleConnections() })
	// The host image's /usr/sbin/policy-rc.d (exit 101, as in container
	// builds) would keep deb-systemd-invoke from starting anything: a real
	// machine has none.
	p.sh("rm -f /usr/sbin/policy-rc.d")
	t.Logf("%s: sandbox ready in %v", format, time.Since(start).Round(time.Millisecond))
	return p
}

// try runs a shell script in the sandbox.
func (p *pkBox) try(script string) (stdout, stderr string, code int) {
	p.t.Helper()
	stdout, stderr, code, err := p.s.Run(p.ctx, "sh", "-c", script)
	if err != nil {
		p.t.Fatalf("sandbox: %s: %v", script, err)
	}
	return stdout, stderr, code
}

// sh runs a shell script and fails the test unless it exits 0.
func (p *pkBox) sh(script string) string {
	p.t.Helper()
	out, stderr, code := p.try(script)
	if code != 0 {
		p.t.Fatalf("sandbox: %s: exit %d\n%s%s", script, code, out, stderr)
	}
	return out
}

// step runs a package manager command and logs how long it took.
func (p *pkBox) step(what, script string) {
	p.t.Helper()
	start := time.Now()
	out, stderr, code := p.try(script)
	p.t.Logf("%s: %s: %v", p.format, what, time.Since(start).Round(time.Millisecond))
	if code != 0 {
		p.t.Fatalf("%s: %s: exit %d\n%s%s", what, script, code, out, stderr)
	}
}

func (p *pkBox) show(unit string, props ...string) map[string]string {
	p.t.Helper()
	m, err := p.s.Show(p.ctx, unit, props...)
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}

// state returns `systemctl is-enabled` and `is-active` of unit.
func (p *pkBox) state(unit string) (enabled, active string) {
	p.t.Helper()
	e, _, _ := p.try("systemctl is-enabled " + unit)
	a, _, _ := p.try("systemctl is-active " + unit)
	return strings.TrimSpace(e), strings.TrimSpace(a)
}

func (p *pkBox) wantState(unit, enabled, active string) {
	p.t.Helper()
	e, a := p.state(unit)
	if (enabled != "" && e != enabled) || a != active {
		p.t.Errorf("%s: %s is %s and %s, want %s and %s", p.format, unit, e, a, pkOrAny(enabled), active)
	}
}

func pkOrAny(s string) string {
	if s == "" {
		return "(any)"
	}
	return s
}

func (p *pkBox) get(c *http.Client) error {
	resp, err := c.Get(pkHealthz)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("GET /healthz: %d %q", resp.StatusCode, body)
	}
	return nil
}

// exists reports which of the paths exist in the sandbox.
func (p *pkBox) exists(paths ...string) []string {
	p.t.Helper()
	var got []string
	for _, path := range paths {
		if _, _, code := p.try("test -e " + path + " || test -L " + path); code == 0 {
			got = append(got, path)
		}
	}
	return got
}

// links lists enablement symlinks of herald's units under /etc/systemd/system.
func (p *pkBox) links() string {
	p.t.Helper()
	return strings.TrimSpace(p.sh(`find /etc/systemd/system -name herald.service -o -name herald.socket -o -name herald-admin.socket | sort`))
}

// checkFreshInstall asserts what an installation leaves: the user, the
// service and the sockets enabled (herald starts at boot) and running, valid
// units and configuration; then the first request is answered.
func (p *pkBox) checkFreshInstall(version string, catalog bool) {
	t := p.t
	t.Helper()
	p.logStates("after installing " + version)
	p.wantState("herald.socket", "enabled", "active")
	p.wantState("herald-admin.socket", "enabled", "active")
	p.wantState("herald-metrics.socket", "disabled", "inactive")
	p.wantState("herald.service", "enabled", "active")
	if pw := strings.TrimSpace(p.sh("getent passwd herald")); !strings.HasSuffix(pw, ":herald messaging gateway:/var/lib/herald:/usr/sbin/nologin") {
		t.Errorf("herald user: %q", pw)
	}
	if got := strings.TrimSpace(p.sh("stat -c '%A %U:%G' /etc/herald/credentials")); got != "drwx------ root:root" {
		t.Errorf("/etc/herald/credentials: %s, want drwx------ root:root", got)
	}
	if out, stderr, code := p.try("herald check-config " + pkConf); code != 0 {
		t.Errorf("herald check-config %s: exit %d\n%s%s", pkConf, code, out, stderr)
	}
	if got := strings.TrimSpace(p.sh("herald version")); !strings.Contains(got, version) {
		t.Errorf("herald version = %q, want %s", got, version)
	}
	p.checkUnits()

	// The first request, through the socket.
	if err := p.get(p.fresh); err != nil {
		t.Fatalf("%s: first request: %v", p.format, err)
	}
	props := p.show("herald.service", "ActiveState", "SubState", "StatusText", "MainPID")
	if props["ActiveState"] != "active" || !strings.HasPrefix(props["StatusText"], "ready") {
		t.Errorf("%s: after the first request herald.service is %v, want active with StatusText ready…", p.format, props)
	}
	status, _, _ := p.try("systemctl status --no-pager --lines=0 herald.service")
	if !strings.Contains(status, "Status: \"ready") {
		t.Errorf("%s: systemctl status herald shows no ready status:\n%s", p.format, status)
	}
	if catalog {
		p.checkCatalog()
	}
}

// checkUnits runs systemd-analyze verify and security on the installed units.
func (p *pkBox) checkUnits() {
	t := p.t
	t.Helper()
	units := []string{p.unitDir + "/herald.service", p.unitDir + "/herald.socket", p.unitDir + "/herald-admin.socket"}
	out, stderr, code := p.try("systemd-analyze verify " + strings.Join(units, " "))
	if code != 0 || out != "" || stderr != "" {
		t.Errorf("%s: systemd-analyze verify: exit %d\n%s%s", p.format, code, out, stderr)
	}
	out, stderr, code = p.try("systemd-analyze security --no-pager --threshold=15 herald.service")
	m := regexp.MustCompile(`Overall exposure level for herald\.service: ([0-9.]+)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Errorf("%s: systemd-analyze security herald.service: exit %d (threshold 1.5)\n%s%s", p.format, code, pkLastLines(out, 3), stderr)
	} else {
		t.Logf("%s: systemd-analyze security herald.service: %s", p.format, m[1])
		if v, _ := strconv.ParseFloat(m[1], 64); v > 1.5 {
			t.Errorf("%s: exposure %s > 1.5", p.format, m[1])
		}
	}
}

func pkLastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// checkCatalog waits for herald's ready event and checks that journalctl -x
// explains it from the installed catalog (Debian's systemd rebuilds the
// catalog index from a dpkg trigger).
func (p *pkBox) checkCatalog() {
	t := p.t
	t.Helper()
	var subject string
	for _, m := range logging.Messages {
		if m.ID == logging.MsgReady {
			subject = m.Subject
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, _ := p.try("journalctl --no-pager -x -u herald.service MESSAGE_ID=" + logging.MsgReady)
		if strings.Contains(out, "Subject: "+subject) && strings.Contains(out, "Defined-By: herald") {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: journalctl -x does not explain the ready event with the catalog:\n%s", p.format, out)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// upgradeUnderLoad runs the upgrade while clients send requests
// continuously, half of them on a new connection each, and returns how many
// succeeded; every failure fails the test.
func (p *pkBox) upgradeUnderLoad(what, script string) int {
	t := p.t
	t.Helper()
	var ok, failed atomic.Int64
	var errMu sync.Mutex
	var errs []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		c := p.fresh
		if i%2 == 1 {
			c = p.reusable
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := p.get(c); err != nil {
					failed.Add(1)
					errMu.Lock()
					if len(errs) < 10 {
						errs = append(errs, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
					}
					errMu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}()
	}
	// The load is on before the upgrade starts.
	for deadline := time.Now().Add(10 * time.Second); ok.Load() < 20; {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("%s: load never got going (%d ok, %d failed: %v)", p.format, ok.Load(), failed.Load(), errs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := ok.Load()
	start := time.Now()
	out, stderr, code := p.try(script)
	took := time.Since(start)
	during := ok.Load() - before
	// Keep the load on until the upgraded herald has answered some more.
	for deadline, target := time.Now().Add(10*time.Second), ok.Load()+50; ok.Load() < target && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%s: %s under load: %v; %d requests answered during it, %d in all, %d failed",
		p.format, what, took.Round(time.Millisecond), during, ok.Load(), failed.Load())
	if code != 0 {
		t.Fatalf("%s: %s: exit %d\n%s%s", p.format, script, code, out, stderr)
	}
	if n := failed.Load(); n > 0 {
		t.Errorf("%s: %d requests failed during the upgrade: %s", p.format, n, strings.Join(errs, "; "))
	}
	if during == 0 {
		t.Errorf("%s: no request was answered while the upgrade ran", p.format)
	}
	return int(ok.Load())
}

// checkUpgrade runs the upgrade to version 2 with the configuration edited
// and herald.socket disabled by the administrator (still listening), and
// checks that only herald.service was restarted.
func (p *pkBox) checkUpgrade(script string) {
	t := p.t
	t.Helper()
	p.sh("echo '" + pkEdit + "' >> " + pkConf + " && systemctl disable herald.socket")
	svc := p.show("herald.service", "InvocationID", "MainPID")
	sockets := map[string]map[string]string{}
	for _, u := range []string{"herald.socket", "herald-admin.socket"} {
		sockets[u] = p.show(u, "InvocationID", "ActiveEnterTimestampMonotonic")
	}
	p.upgradeUnderLoad("upgrade to "+p.b.v2, script)

	if got := strings.TrimSpace(p.sh("herald version")); !strings.Contains(got, p.b.v2) {
		t.Errorf("%s: after the upgrade herald version = %q, want %s", p.format, got, p.b.v2)
	}
	if tail := strings.TrimSpace(p.sh("tail -n 1 " + pkConf)); tail != pkEdit {
		t.Errorf("%s: the edited conffile was not kept: last line %q", p.format, tail)
	}
	if extra := strings.TrimSpace(p.sh("ls /etc/herald | grep -v -x -e herald.yaml -e credentials || true")); extra != "" {
		t.Errorf("%s: unexpected files in /etc/herald after the upgrade: %s", p.format, extra)
	}
	after := p.show("herald.service", "InvocationID", "MainPID", "ActiveState", "StatusText")
	if after["InvocationID"] == svc["InvocationID"] || after["ActiveState"] != "active" || !strings.HasPrefix(after["StatusText"], "ready") {
		t.Errorf("%s: herald.service was not restarted into a ready state: before %v, after %v", p.format, svc, after)
	}
	for u, before := range sockets {
		if now := p.show(u, "InvocationID", "ActiveEnterTimestampMonotonic"); !reflect.DeepEqual(now, before) {
			t.Errorf("%s: %s was restarted by the upgrade: %v, then %v", p.format, u, before, now)
		}
	}
	// The administrator's disable survived; the socket kept listening.
	p.wantState("herald.socket", "disabled", "active")
	p.wantState("herald-admin.socket", "enabled", "active")
	p.wantState("herald.service", "enabled", "active")
}

func pkDebLifecycle(t *testing.T, b *pkBuild) {
	p := pkNewBox(t, b, "deb")
	deb1, deb2 := pkShare+"/"+b.deb1, pkShare+"/"+b.deb2

	p.reloadProbe()
	p.step("install "+b.v1, "dpkg -i "+deb1)
	if !p.reloaded() {
		t.Error("deb: installation under a running systemd did not run daemon-reload")
	}
	p.checkFreshInstall(b.v1, true)
	if t.Failed() {
		return
	}

	p.checkUpgrade("dpkg -i " + deb2)
	p.checkCredentials()

	// Remove: stopped and disabled; configuration and state stay. The
	// optional metrics socket, enabled by the administrator, stops too.
	p.enableMetricsSocket()
	p.step("remove", "dpkg -r herald")
	for _, u := range []string{"herald.service", "herald.socket", "herald-admin.socket", "herald-metrics.socket"} {
		if a := p.show(u, "ActiveState")["ActiveState"]; a != "inactive" {
			t.Errorf("deb: %s is %s after removal", u, a)
		}
	}
	if l := p.links(); l != "" {
		t.Errorf("deb: enablement links left after removal:\n%s", l)
	}
	if err := p.get(p.fresh); err == nil || !pkIsRefused(err) {
		t.Errorf("deb: after removal GET /healthz = %v, want connection refused", err)
	}
	if got := p.exists(pkConf, "/var/lib/herald/herald.db"); len(got) != 2 {
		t.Errorf("deb: removal (not purge) must keep configuration and state; left: %v", got)
	}

	// Reinstall after removal: the administrator's disable of
	// herald.socket is still respected (it listens only because the
	// service, enabled again, requires it), the other units come back.
	p.step("reinstall after remove", "dpkg -i "+deb2)
	p.wantState("herald.socket", "disabled", "active")
	p.wantState("herald-admin.socket", "enabled", "active")
	p.wantState("herald.service", "enabled", "active")
	p.sh("systemctl enable --now herald.socket")
	if err := p.get(p.fresh); err != nil {
		t.Errorf("deb: request after reinstallation: %v", err)
	}
	if tail := strings.TrimSpace(p.sh("tail -n 1 " + pkConf)); tail != pkEdit {
		t.Errorf("deb: the edited conffile was not kept through remove and reinstall: %q", tail)
	}

	// Purge: state and configuration gone, the user stays.
	p.step("purge", "dpkg -P herald")
	if left := p.exists("/etc/herald", "/var/lib/herald", "/run/herald", "/var/cache/herald"); len(left) > 0 {
		t.Errorf("deb: left after purge: %v", left)
	}
	if l := p.links(); l != "" {
		t.Errorf("deb: enablement links left after purge:\n%s", l)
	}
	if st := strings.TrimSpace(p.sh("ls /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked 2>/dev/null | grep herald || true")); st != "" {
		t.Errorf("deb: deb-systemd-helper state left after purge: %s", st)
	}
	if _, _, code := p.try("getent passwd herald"); code != 0 {
		t.Error("deb: purge removed the herald user (Debian keeps system users)")
	}

	// Reinstall after purge: a fresh installation.
	p.step("install after purge", "dpkg -i "+deb1)
	p.checkFreshInstall(b.v1, false)
	p.checkPristineConf()

	p.step("purge again", "dpkg -P herald")
	p.checkOfflineInstall("dpkg -i " + deb1)
}

// checkCredentials puts a secret into /etc/herald/credentials, turns on the
// shipped (signed) webhook section, and checks that the packaged unit's
// LoadCredential=herald:/etc/herald/credentials hands it to herald: systemd
// 252 names a directory's files <id>_<file> (herald_webhook-secret), and
// copies them when the service starts, so a new credential needs a restart.
func (p *pkBox) checkCredentials() {
	t := p.t
	t.Helper()
	const secret = "pk-s3cret"
	p.sh(`install -m 0600 /dev/null /etc/herald/credentials/webhook-secret &&
		printf '` + secret + `' >/etc/herald/credentials/webhook-secret &&
		sed -i '/^  webhook:/,/^  telegram:/ s/^    enabled: false$/    enabled: true\n    allow_all: true/' ` + pkConf + ` &&
		herald check-config ` + pkConf)
	_, _, code := p.try("systemctl reload herald.service")
	t.Logf("%s: reload after adding a credential: exit %d, StatusText %q", p.format, code,
		p.show("herald.service", "StatusText")["StatusText"])
	p.sh("systemctl restart herald.service")
	if got := strings.TrimSpace(p.sh("ls /run/credentials/herald.service")); got != "herald_webhook-secret" {
		t.Errorf("%s: $CREDENTIALS_DIRECTORY holds %q, want herald_webhook-secret", p.format, got)
	}
	if st := p.show("herald.service", "StatusText")["StatusText"]; !strings.HasPrefix(st, "ready: 1/1 platforms") {
		t.Errorf("%s: with the webhook on, StatusText = %q", p.format, st)
	}
	body := `{"conversation_id":"pk","user_id":"pk","text":"hello"}`
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, "http://127.0.0.1:8089/hooks/webhook?wait=10s", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := p.fresh.Do(req)
	if err != nil {
		t.Fatalf("%s: signed webhook request: %v", p.format, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(answer), "echo: hello") {
		t.Errorf("%s: signed webhook request: %d %s, want 200 with the echo reply", p.format, resp.StatusCode, answer)
	}
}

// reloadProbe arms a marker for daemon-reload: a loaded unit (kept loaded by
// being active) whose file then changes has NeedDaemonReload=yes until the
// next daemon-reload.
func (p *pkBox) reloadProbe() {
	p.t.Helper()
	p.sh(`printf '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n' >/etc/systemd/system/pk-reload-probe.service &&
		systemctl daemon-reload && systemctl start pk-reload-probe.service &&
		touch -d '+1 minute' /etc/systemd/system/pk-reload-probe.service`)
	if got := p.show("pk-reload-probe.service", "NeedDaemonReload")["NeedDaemonReload"]; got != "yes" {
		p.t.Fatalf("reload probe: NeedDaemonReload=%s, want yes", got)
	}
}

// reloaded reports whether systemd was reloaded since reloadProbe.
func (p *pkBox) reloaded() bool {
	p.t.Helper()
	return p.show("pk-reload-probe.service", "NeedDaemonReload")["NeedDaemonReload"] == "no"
}

// checkOfflineInstall installs as in a chroot or an image build, where
// systemd does not run (no /run/systemd/system; systemctl works offline):
// the units get enabled for the next boot, but nothing is started and
// systemd is not reloaded.
func (p *pkBox) checkOfflineInstall(script string) {
	t := p.t
	t.Helper()
	p.reloadProbe()
	p.step("install without a running systemd",
		`SYSTEMD_OFFLINE=1 unshare --mount sh -c 'mount -t tmpfs none /run/systemd && `+script+`'`)
	if p.reloaded() {
		t.Errorf("%s: the maintainer scripts ran daemon-reload without a running systemd", p.format)
	}
	p.wantState("herald.socket", "enabled", "inactive")
	p.wantState("herald-admin.socket", "enabled", "inactive")
	p.wantState("herald.service", "enabled", "inactive")
}

// checkPristineConf compares the installed configuration with the shipped one.
func (p *pkBox) checkPristineConf() {
	p.t.Helper()
	want, err := os.ReadFile(filepath.Join(pkRoot(p.t), "packaging", "herald.yaml"))
	if err != nil {
		p.t.Fatal(err)
	}
	if got := p.sh("cat " + pkConf); got != string(want) {
		p.t.Errorf("%s: %s after a fresh installation differs from packaging/herald.yaml", p.format, pkConf)
	}
}

func pkIsRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "refused")
}

func pkRPMLifecycle(t *testing.T, b *pkBuild) {
	p := pkNewBox(t, b, "rpm")
	rpm1, rpm2 := pkShare+"/"+b.rpm1, pkShare+"/"+b.rpm2
	// Debian's rpm refuses to install without --force-debian, and its
	// database does not know systemd (dpkg's does): --nodeps.
	const rpmOpts = " --nodeps --force-debian "

	p.reloadProbe()
	p.step("install "+b.v1, "rpm -i"+rpmOpts+rpm1)
	if !p.reloaded() {
		t.Error("rpm: installation under a running systemd did not run daemon-reload")
	}
	p.checkFreshInstall(b.v1, false)
	if t.Failed() {
		return
	}

	p.checkUpgrade("rpm -U" + rpmOpts + rpm2)
	if got := strings.TrimSpace(p.sh("rpm -q --qf '%{VERSION}-%{RELEASE}' herald")); got != b.v2+"-1" {
		t.Errorf("rpm -q herald = %s, want %s-1", got, b.v2)
	}
	p.sh("systemctl enable herald.socket")

	// Erase (RPM has no purge): stopped and disabled; the state (messages
	// not yet delivered) and the secrets stay, as Fedora's daemons with
	// state leave them, and rpm keeps the edited configuration as
	// herald.yaml.rpmsave; the cache and the runtime directory go.
	const keep = "/etc/herald/credentials/pk-keep"
	p.sh("install -m 0600 /dev/null " + keep + " && printf kept >" + keep + " && test -s /var/lib/herald/herald.db")
	p.enableMetricsSocket()
	p.step("erase", "rpm -e --nodeps herald")
	for _, u := range []string{"herald.service", "herald.socket", "herald-admin.socket", "herald-metrics.socket"} {
		if a := p.show(u, "ActiveState")["ActiveState"]; a != "inactive" {
			t.Errorf("rpm: %s is %s after erase", u, a)
		}
	}
	if l := p.links(); l != "" {
		t.Errorf("rpm: enablement links left after erase:\n%s", l)
	}
	if err := p.get(p.fresh); err == nil || !pkIsRefused(err) {
		t.Errorf("rpm: after erase GET /healthz = %v, want connection refused", err)
	}
	if left := p.exists(pkConf, "/run/herald", "/var/cache/herald"); len(left) > 0 {
		t.Errorf("rpm: left after erase: %v", left)
	}
	if kept := strings.TrimSpace(p.sh("cat " + keep + "; stat -c ' %a %U' /etc/herald/credentials " + keep + " /var/lib/herald/herald.db")); kept != "kept 700 root\n 600 root\n 600 herald" {
		t.Errorf("rpm: after erase the secrets and the state are not kept as they were: %q", kept)
	}
	if tail := strings.TrimSpace(p.sh("tail -n 1 /etc/herald/herald.yaml.rpmsave")); tail != pkEdit {
		t.Errorf("rpm: herald.yaml.rpmsave does not hold the edited configuration: %q", tail)
	}
	if _, _, code := p.try("getent passwd herald"); code != 0 {
		t.Error("rpm: erase removed the herald user")
	}

	// Reinstall after erase.
	p.step("install after erase", "rpm -i"+rpmOpts+rpm2)
	p.checkFreshInstall(b.v2, false)
	p.checkPristineConf()

	p.step("erase again", "rpm -e --nodeps herald")
	p.checkOfflineInstall("rpm -i" + rpmOpts + rpm1)

	// rpmlint last: it unpacks the payload into / (nfpm's cpio member
	// names are absolute), which only this throw-away root may suffer.
	if _, _, code := p.try("command -v rpmlint"); code != 0 {
		t.Skip("rpmlint not installed (make deps installs it)")
	}
	start := time.Now()
	out, stderr, code := p.try("cd /tmp && rpmlint -c " + pkShare + "/rpmlint.toml " + rpm2)
	t.Logf("rpmlint (%v):\n%s%s", time.Since(start).Round(time.Millisecond), out, stderr)
	if code != 0 || !strings.Contains(out, " 0 errors") {
		t.Errorf("rpmlint: exit %d, want no errors", code)
	}
}

// TestPackageVersion checks how scripts/package maps git describe to a
// package version, in a scratch repository.
func TestPackageVersion(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	root := pkRoot(t)
	repo := t.TempDir()
	script, err := os.ReadFile(filepath.Join(root, "scripts", "package"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(repo, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "scripts", "package"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	version := func() string {
		t.Helper()
		cmd := exec.Command(filepath.Join(repo, "scripts", "package"), "version")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "HERALD_VERSION=", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("scripts/package version: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(msg string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(repo, "f"), []byte(msg), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", "f", "scripts/package")
		git("commit", "-q", "-m", msg)
		return git("rev-parse", "--short=12", "HEAD")
	}
	git("init", "-q")
	commit("one")
	h := commit("two")
	var got []string
	check := func(want string) {
		t.Helper()
		v := version()
		if v != want {
			t.Errorf("version = %q, want %q", v, want)
		}
		got = append(got, v)
	}
	check("0.0.0~git2." + h)
	if err := os.WriteFile(filepath.Join(repo, "f"), []byte("dirty"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("0.0.0~git2." + h + ".dirty")
	commit("three")
	git("tag", "v1.0.0-rc1")
	check("1.0.0~rc1")
	h = commit("four")
	check("1.0.0~rc1+git1." + h)
	git("tag", "v1.0.0")
	check("1.0.0")
	h = commit("five")
	check("1.0.0+git1." + h)
	h = commit("six")
	check("1.0.0+git2." + h)

	// Each version sorts after the previous one (except the dirty tree,
	// which is not a release) in dpkg and rpm.
	order := slices.Delete(slices.Clone(got), 1, 2)
	for i := 1; i < len(order); i++ {
		a, b := order[i-1], order[i]
		if _, err := exec.LookPath("dpkg"); err == nil {
			if out, err := exec.Command("dpkg", "--compare-versions", b, "gt", a).CombinedOutput(); err != nil {
				t.Errorf("dpkg: %s is not newer than %s %s", b, a, out)
			}
		}
		if _, err := exec.LookPath("rpm"); err == nil {
			out, err := exec.Command("rpm", "--eval", fmt.Sprintf("%%{lua: print(rpm.vercmp(%q, %q))}", b, a)).Output()
			if err != nil || strings.TrimSpace(string(out)) != "1" {
				t.Errorf("rpm: %s is not newer than %s (%q %v)", b, a, out, err)
			}
		}
	}

	// An invalid override is refused.
	cmd := exec.Command(filepath.Join(repo, "scripts", "package"), "version")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "HERALD_VERSION=1.0-1")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("HERALD_VERSION=1.0-1 accepted: %s", out)
	}
}

// TestExampleConfig checks the packaged /etc/herald/herald.yaml: it is valid,
// every platform is present and off, the listener is on loopback, and every
// configuration key (herald's and each adapter's) appears, set or commented
// out; uncommenting every key still gives a valid configuration, so the
// documented values are real.
func TestExampleConfig(t *testing.T) {
	path := filepath.Join(pkRoot(t), "packaging", "herald.yaml")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, src)
	if err != nil {
		t.Fatalf("herald.yaml is invalid: %v", err)
	}
	host, _, err := net.SplitHostPort(cfg.Listen.HTTP)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		t.Errorf("listen.http %q is not a loopback address", cfg.Listen.HTTP)
	}
	for _, typ := range adapter.Types() {
		found := false
		for name, p := range cfg.Platforms {
			if p.Type == typ {
				found = true
				if p.IsEnabled() {
					t.Errorf("platform %s is enabled in the example", name)
				}
			}
		}
		if !found {
			t.Errorf("no section for platform type %s", typ)
		}
	}

	// Uncomment every "#key: value" line.
	commented := regexp.MustCompile(`^(\s*)#([a-z_]+: .*)$`)
	var lines []string
	for _, l := range strings.Split(string(src), "\n") {
		if m := commented.FindStringSubmatch(l); m != nil {
			l = m[1] + m[2]
		}
		lines = append(lines, l)
	}
	full := []byte(strings.Join(lines, "\n"))
	fullCfg, err := config.Parse(path+" (every key uncommented)", full)
	if err != nil {
		t.Fatalf("with every key uncommented: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(full, &doc); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	pkYAMLKeys(doc.Content[0], "", have)

	want := map[string]bool{}
	pkStructKeys(reflect.TypeOf(config.Config{}), "", want)
	delete(want, "fault") // test-only fault injection, not for operators
	for k := range want {
		if strings.HasPrefix(k, "fault.") {
			delete(want, k)
		}
	}
	// The keys every platform section takes are documented once, in full
	// in one section (the others refer to the comment above them).
	common := map[string]bool{}
	pkStructKeys(reflect.TypeOf(config.Platform{}), "", common)
	delete(common, "type") // the section name is the type
	for k := range common {
		found := false
		for name := range fullCfg.Platforms {
			found = found || have["platforms."+name+"."+k]
		}
		if !found {
			t.Errorf("the common platform key %s is not documented in any section of packaging/herald.yaml", k)
		}
	}
	for name, p := range fullCfg.Platforms {
		prefix := "platforms." + name
		ty, ok := adapter.Lookup(p.Type)
		if !ok {
			t.Fatalf("unknown type %s", p.Type)
		}
		pkStructKeys(reflect.TypeOf(ty.NewConfig()).Elem(), prefix, want)
	}
	var missing []string
	for k := range want {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	for _, k := range missing {
		t.Errorf("key %s is not documented in packaging/herald.yaml", k)
	}
}

// pkYAMLKeys collects the dotted paths of every mapping key.
func pkYAMLKeys(n *yaml.Node, prefix string, out map[string]bool) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if prefix != "" {
			k = prefix + "." + k
		}
		out[k] = true
		pkYAMLKeys(n.Content[i+1], k, out)
	}
}

// pkStructKeys collects the dotted yaml paths of a configuration struct. A
// struct field is a section unless it is a leaf value (durations, secret
// references and the like are written as one key).
func pkStructKeys(t reflect.Type, prefix string, out map[string]bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if !f.IsExported() || tag == "-" || tag == "" {
			continue
		}
		k := tag
		if prefix != "" {
			k = prefix + "." + tag
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Map && tag == "platforms" {
			continue // checked per section
		}
		out[k] = true
		if ft.Kind() == reflect.Struct && ft.PkgPath() == reflect.TypeOf(config.Config{}).PkgPath() {
			pkStructKeys(ft, k, out)
		}
	}
}

// enableMetricsSocket enables and starts herald-metrics.socket the way the
// README says (with herald stopped: systemd refuses to start a socket
// whose service runs), and checks herald took it.
func (p *pkBox) enableMetricsSocket() {
	p.t.Helper()
	p.sh("systemctl enable herald-metrics.socket && systemctl stop herald.service && systemctl start herald-metrics.socket herald.service")
	p.wantState("herald-metrics.socket", "enabled", "active")
	if out := p.sh("curl -sS --max-time 30 http://127.0.0.1:9469/metrics"); !strings.Contains(out, "herald_build_info{") {
		p.t.Errorf("%s: herald-metrics.socket serves no metrics:\n%.300s", p.format, out)
	}
}
