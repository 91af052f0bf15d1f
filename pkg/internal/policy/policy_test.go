// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"bufio"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/heraldgw/herald"

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

type goFile struct {
	path    string // relative to the root
	pkg     string
	doc     bool // has a package comment
	imports []string
	test    bool
	src     string
}

// walkRepo calls visit with every file of the repository but build output,
// state and test data, and its path relative to the root.
func walkRepo(t *testing.T, visit func(p, rel string)) {
	t.Helper()
	root := repoRoot(t)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "bin", "dist", ".herald":
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		visit(p, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// files parses every Go file of the repository (not testdata).
func files(t *testing.T) []goFile {
	t.Helper()
	var out []goFile
	fset := token.NewFileSet()
	walkRepo(t, func(p, rel string) {
		if !strings.HasSuffix(p, ".go") {
			return
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, p, b, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		gf := goFile{path: rel, pkg: f.Name.Name, doc: f.Doc != nil, test: strings.HasSuffix(p, "_test.go"), src: string(b)}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			gf.imports = append(gf.imports, path)
		}
		out = append(out, gf)
	})
	return out
}

func TestLicenceHeader(t *testing.T) {
	for _, f := range files(t) {
		if !strings.HasPrefix(f.src, "// SPDX-License-Identifier: Apache-2.0\n") {
			t.Errorf("%s: first line must be the SPDX licence header", f.path)
		}
	}
}

// TestPackageDocs: every package has exactly one package comment, in
// doc.go for libraries (the file a reader opens first), anywhere for
// commands.
func TestPackageDocs(t *testing.T) {
	type pkgInfo struct {
		docs   []string
		isMain bool
	}
	pkgs := map[string]*pkgInfo{}
	for _, f := range files(t) {
		if f.test {
			continue
		}
		dir := filepath.Dir(f.path)
		p := pkgs[dir]
		if p == nil {
			p = &pkgInfo{}
			pkgs[dir] = p
		}
		p.isMain = f.pkg == "main"
		if f.doc {
			p.docs = append(p.docs, filepath.Base(f.path))
		}
	}
	for dir, p := range pkgs {
		switch {
		case len(p.docs) != 1:
			t.Errorf("%s: %d package comments (%v), want exactly 1", dir, len(p.docs), p.docs)
		case !p.isMain && p.docs[0] != "doc.go":
			t.Errorf("%s: package comment in %s, want doc.go", dir, p.docs[0])
		}
	}
}

// TestAdapterImports: an adapter depends on the adapter contract and the
// leaf packages, never on the core or on another adapter, so any of them
// can be changed, tested or removed alone.
func TestAdapterImports(t *testing.T) {
	forbidden := []string{module + "/pkg/herald", module + "/pkg/dispatch", module + "/pkg/store", module + "/pkg/agent"}
	for _, f := range files(t) {
		if !strings.HasPrefix(f.path, "pkg/adapter/") {
			continue
		}
		parts := strings.Split(f.path, "/")
		if len(parts) < 4 || parts[2] == "adaptertest" || parts[2] == "all" || parts[2] == "fakeserver" {
			continue
		}
		// The fakes (<name>test packages) and tests may use the fakes'
		// shared plumbing.
		fake := f.test || (len(parts) >= 5 && parts[3] == parts[2]+"test")
		own := module + "/pkg/adapter/" + parts[2]
		for _, imp := range f.imports {
			for _, bad := range forbidden {
				if imp == bad || strings.HasPrefix(imp, bad+"/") {
					if f.test && strings.HasPrefix(imp, module+"/pkg/agent") {
						continue
					}
					t.Errorf("%s imports %s: adapters must not depend on the core", f.path, imp)
				}
			}
			if imp == module+"/pkg/adapter/fakeserver" && !fake {
				t.Errorf("%s imports %s: only fakes and tests use the fakes' plumbing", f.path, imp)
				continue
			}
			if strings.HasPrefix(imp, module+"/pkg/adapter/") && imp != own && !strings.HasPrefix(imp, own+"/") &&
				imp != module+"/pkg/adapter/adaptertest" && imp != module+"/pkg/adapter/fakeserver" {
				t.Errorf("%s imports %s: adapters must not import each other", f.path, imp)
			}
		}
	}
}

// TestAdapterREADMEs: each platform package documents its wire protocol.
func TestAdapterREADMEs(t *testing.T) {
	root := repoRoot(t)
	entries, err := os.ReadDir(filepath.Join(root, "pkg", "adapter"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "adaptertest" || e.Name() == "all" || e.Name() == "fakeserver" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, "pkg", "adapter", e.Name(), "README.md"))
		if err != nil {
			t.Errorf("pkg/adapter/%s: no README.md", e.Name())
			continue
		}
		if !strings.Contains(string(b), "## Wire protocol") {
			t.Errorf("pkg/adapter/%s/README.md has no \"## Wire protocol\" section", e.Name())
		}
	}
}

// TestNoFatalOutsideMain: only main decides to exit.
func TestNoFatalOutsideMain(t *testing.T) {
	for _, f := range files(t) {
		if f.pkg == "main" || f.test {
			continue
		}
		if strings.Contains(f.path, "test") || strings.HasPrefix(f.path, "pkg/adapter/fakeserver/") {
			continue // test helpers (adaptertest, fakeserver, fakes) may fail tests
		}
		for i, line := range strings.Split(f.src, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			for _, bad := range []string{"log.Fatal(", ".Fatal(", ".Fatalf(", ".Fatalln(", "os.Exit("} {
				if strings.Contains(line, bad) {
					t.Errorf("%s:%d uses %s: libraries return errors, main exits", f.path, i+1, bad)
				}
			}
		}
	}
}

// TestDependencies: the module's direct requirements are the ones chosen on
// purpose, each with its reason below; a new one needs a reason in its
// commit and an entry here.
func TestDependencies(t *testing.T) {
	allowed := map[string]string{
		"github.com/coreos/go-systemd/v22":    "sd_notify, socket activation, journal, D-Bus helpers",
		"github.com/godbus/dbus/v5":           "D-Bus (systemd unit state)",
		"github.com/sirupsen/logrus":          "logging",
		"github.com/coder/websocket":          "Feishu, Slack, Discord websockets",
		"modernc.org/sqlite":                  "embedded store without cgo",
		"go.yaml.in/yaml/v3":                  "configuration with line numbers",
		"google.golang.org/protobuf":          "protowire for Feishu frames",
		"github.com/prometheus/client_golang": "metrics endpoint",
		"github.com/prometheus/client_model":  "metrics test reads metric families",
		"go.uber.org/goleak":                  "goroutine-leak checks in tests",
		"golang.org/x/sys":                    "setns/unshare in the test sandbox",
		"github.com/nats-io/nats.go":          "cluster mode: leases over JetStream KV",
		"github.com/nats-io/nats-server/v2":   "in-process JetStream for cluster tests and herald-bench only (never in the herald binary)",
	}
	f, err := os.Open(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var direct []string
	inRequire := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "require (":
			inRequire = true
		case line == ")":
			inRequire = false
		case inRequire && line != "" && !strings.Contains(line, "// indirect"):
			direct = append(direct, strings.Fields(line)[0])
		case strings.HasPrefix(line, "require ") && !strings.Contains(line, "// indirect"):
			direct = append(direct, strings.Fields(line)[1])
		}
	}
	sort.Strings(direct)
	for _, m := range direct {
		if _, ok := allowed[m]; !ok {
			t.Errorf("go.mod requires %s directly: not in the dependency allowlist (add it here with the reason)", m)
		}
	}
}
