// SPDX-License-Identifier: Apache-2.0

package logging

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// catalogPath is the journal message catalog shipped in the packages, relative
// to the module root.
const catalogPath = "packaging/herald.catalog"

type catalogEntry struct {
	line    int
	headers map[string]string
	body    string
}

var (
	idRE          = regexp.MustCompile(`^[0-9a-f]{32}$`)
	catalogHeadRE = regexp.MustCompile(`^-- ([0-9a-f]{32})(?: ([a-zA-Z_@.]+))?$`)
	headerRE      = regexp.MustCompile(`^([A-Z][A-Za-z-]*): (.+)$`)
	substRE       = regexp.MustCompile(`@([^@\s]+)@`)
)

// moduleRoot walks up from the package directory to go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// parseCatalog reads a catalog in the format of https://systemd.io/CATALOG/:
// "-- ID" starts an entry, header lines follow up to a blank line, then the
// body. Lines starting with '#' outside a body are comments.
func parseCatalog(t *testing.T, path string) map[string]*catalogEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := map[string]*catalogEntry{}
	var cur *catalogEntry
	inHeaders := false
	var body []string
	flush := func() {
		if cur != nil {
			cur.body = strings.TrimSpace(strings.Join(body, "\n"))
		}
		body = nil
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "-- ") {
			flush()
			m := catalogHeadRE.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s:%d: malformed entry line %q", path, n, line)
				cur = nil
				continue
			}
			if m[2] != "" {
				t.Errorf("%s:%d: language %q: herald's catalog is English only, without a language tag", path, n, m[2])
			}
			if _, dup := entries[m[1]]; dup {
				t.Errorf("%s:%d: duplicate entry %s", path, n, m[1])
			}
			cur = &catalogEntry{line: n, headers: map[string]string{}}
			entries[m[1]] = cur
			inHeaders = true
			continue
		}
		switch {
		case cur == nil:
			if strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "#") {
				t.Errorf("%s:%d: text outside an entry: %q", path, n, line)
			}
		case inHeaders && line == "":
			inHeaders = false
		case inHeaders:
			m := headerRE.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s:%d: malformed header %q (a blank line must separate headers and body)", path, n, line)
				continue
			}
			cur.headers[m[1]] = m[2]
		default:
			body = append(body, line)
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return entries
}

// declaredIDs returns the Msg* constants of messages.go with their values.
func declaredIDs(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "messages.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Msg") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Errorf("messages.go: %s is not a string literal", name.Name)
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				ids[name.Name] = v
			}
		}
	}
	return ids
}

// usage is where the code logs one MESSAGE_ID and the journal fields it logs
// with it.
type usage struct {
	pos    []string
	fields map[string]bool
}

// usedIDs finds every logging.Msg* identifier in the module's Go sources
// (tests and testdata excluded) and, for each logging.Event(…, logging.MsgX)
// call, the fields added to it in the same expression (WithField,
// WithFields with a literal map, WithError), as journal field names.
func usedIDs(t *testing.T, root string) map[string]*usage {
	t.Helper()
	used := map[string]*usage{}
	get := func(name string) *usage {
		u := used[name]
		if u == nil {
			u = &usage{fields: map[string]bool{}}
			used[name] = u
		}
		return u
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if p != root && (strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata" || n == "vendor" || n == "dist" || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			// Someone else's file mid-edit must not hide the rest.
			t.Logf("skipping %s: %v", p, err)
			return nil
		}
		inLogging := f.Name.Name == "logging" && filepath.Dir(p) == filepath.Join(root, "pkg", "logging")
		msgName := func(e ast.Expr) string {
			switch x := e.(type) {
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && id.Name == "logging" && strings.HasPrefix(x.Sel.Name, "Msg") {
					return x.Sel.Name
				}
			case *ast.Ident:
				if inLogging && strings.HasPrefix(x.Name, "Msg") && x.Name != "Message" && x.Name != "Messages" {
					return x.Name
				}
			}
			return ""
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.SelectorExpr:
				if name := msgName(x); name != "" {
					rel, _ := filepath.Rel(root, fset.Position(x.Pos()).Filename)
					u := get(name)
					u.pos = append(u.pos, rel+":"+strconv.Itoa(fset.Position(x.Pos()).Line))
				}
			case *ast.CallExpr:
				// The outermost call of a chain such as
				// logging.Event(l, logging.MsgX).WithField("k", v).Info("…").
				name, fields := chain(x, msgName)
				if name != "" {
					u := get(name)
					for _, f := range fields {
						u.fields[FieldName(f)] = true
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return used
}

// chain walks a method-call chain down to logging.Event(_, MsgX) and returns
// MsgX and the field keys added along the way.
func chain(call *ast.CallExpr, msgName func(ast.Expr) string) (string, []string) {
	var fields []string
	for {
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return "", nil
		}
		if id, ok := sel.X.(*ast.Ident); ok && sel.Sel.Name == "Event" && (id.Name == "logging") && len(call.Args) == 2 {
			return msgName(call.Args[1]), fields
		}
		if fn, ok := call.Fun.(*ast.Ident); ok && fn.Name == "Event" && len(call.Args) == 2 {
			return msgName(call.Args[1]), fields
		}
		switch sel.Sel.Name {
		case "WithField":
			if len(call.Args) == 2 {
				if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					k, _ := strconv.Unquote(lit.Value)
					fields = append(fields, k)
				}
			}
		case "WithError":
			fields = append(fields, "error")
		case "WithFields":
			if len(call.Args) == 1 {
				if cl, ok := call.Args[0].(*ast.CompositeLit); ok {
					for _, e := range cl.Elts {
						if kv, ok := e.(*ast.KeyValueExpr); ok {
							if lit, ok := kv.Key.(*ast.BasicLit); ok && lit.Kind == token.STRING {
								k, _ := strconv.Unquote(lit.Value)
								fields = append(fields, k)
							}
						}
					}
				}
			}
		}
		next, ok := sel.X.(*ast.CallExpr)
		if !ok {
			return "", nil
		}
		call = next
	}
}

// TestMessagesTable checks that every Msg* constant has one row in Messages,
// under its own name, and that the IDs are valid and distinct.
func TestMessagesTable(t *testing.T) {
	declared := declaredIDs(t)
	if len(declared) == 0 {
		t.Fatal("no Msg* constants found in messages.go")
	}
	rows := map[string]Message{}
	seen := map[string]string{}
	for _, m := range Messages {
		if !idRE.MatchString(m.ID) {
			t.Errorf("%s: MESSAGE_ID %q is not 32 lowercase hex digits", m.Name, m.ID)
		}
		if prev, dup := seen[m.ID]; dup {
			t.Errorf("%s and %s share MESSAGE_ID %s", prev, m.Name, m.ID)
		}
		seen[m.ID] = m.Name
		if _, dup := rows[m.Name]; dup {
			t.Errorf("Messages lists %s twice", m.Name)
		}
		rows[m.Name] = m
		if strings.TrimSpace(m.Subject) == "" || strings.Contains(m.Subject, "\n") {
			t.Errorf("%s: Subject must be one non-empty line", m.Name)
		}
		if v, ok := declared[m.Name]; !ok {
			t.Errorf("Messages row %s names no constant in messages.go", m.Name)
		} else if v != m.ID {
			t.Errorf("Messages row %s has ID %s, the constant is %s", m.Name, m.ID, v)
		}
	}
	for name := range declared {
		if _, ok := rows[name]; !ok {
			t.Errorf("constant %s has no row in Messages", name)
		}
	}
}

// TestCatalog checks packaging/herald.catalog against Messages and the code:
// every MESSAGE_ID has exactly one entry and every entry a MESSAGE_ID, with
// the subject of its Messages row, herald's headers and a body; every
// logging.Msg* used in code is a known MESSAGE_ID; and every @FIELD@ an entry
// substitutes is logged with that MESSAGE_ID.
func TestCatalog(t *testing.T) {
	root := moduleRoot(t)
	entries := parseCatalog(t, filepath.Join(root, catalogPath))
	byID := map[string]Message{}
	byName := map[string]Message{}
	for _, m := range Messages {
		byID[m.ID] = m
		byName[m.Name] = m
	}
	for _, m := range Messages {
		e, ok := entries[m.ID]
		if !ok {
			t.Errorf("%s (%s) has no entry in %s", m.Name, m.ID, catalogPath)
			continue
		}
		if got := e.headers["Subject"]; got != m.Subject {
			t.Errorf("%s:%d (%s): Subject %q, Messages says %q", catalogPath, e.line, m.Name, got, m.Subject)
		}
		if got := e.headers["Defined-By"]; got != "herald" {
			t.Errorf("%s:%d (%s): Defined-By %q, want herald", catalogPath, e.line, m.Name, got)
		}
		if got := e.headers["Support"]; !strings.HasPrefix(got, "https://") {
			t.Errorf("%s:%d (%s): Support %q is not an https URL", catalogPath, e.line, m.Name, got)
		}
		if got := e.headers["Documentation"]; !strings.Contains(got, "man:herald(8)") {
			t.Errorf("%s:%d (%s): Documentation %q does not name man:herald(8)", catalogPath, e.line, m.Name, got)
		}
		if len(e.body) < 80 {
			t.Errorf("%s:%d (%s): the body must say what happened and what to do (%d characters)", catalogPath, e.line, m.Name, len(e.body))
		}
		for _, line := range strings.Split(e.body, "\n") {
			if strings.HasPrefix(line, "--") {
				t.Errorf("%s:%d (%s): a body line starting with -- would start a new entry: %q", catalogPath, e.line, m.Name, line)
			}
		}
	}
	for id, e := range entries {
		if _, ok := byID[id]; !ok {
			t.Errorf("%s:%d: entry %s is not a MESSAGE_ID of pkg/logging/messages.go", catalogPath, e.line, id)
		}
	}

	used := usedIDs(t, root)
	var names []string
	for name := range used {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		u := used[name]
		m, ok := byName[name]
		if !ok {
			t.Errorf("logging.%s (used at %s) is not in Messages", name, strings.Join(u.pos, ", "))
			continue
		}
		e := entries[m.ID]
		if e == nil {
			continue // reported above
		}
		for _, sm := range substRE.FindAllStringSubmatch(e.body, -1) {
			if !u.fields[sm[1]] {
				t.Errorf("%s:%d (%s): @%s@ is not a field logged with this MESSAGE_ID (logged: %s)",
					catalogPath, e.line, name, sm[1], strings.Join(sortedKeys(u.fields), ", "))
			}
		}
	}
	for _, m := range Messages {
		if _, ok := used[m.Name]; !ok {
			t.Logf("note: %s is not logged anywhere yet", m.Name)
		}
	}
}

// TestCatalogJournalctl feeds the catalog to journalctl --update-catalog in a
// scratch root and checks that it lists every entry under its subject: the
// parser that matters is systemd's.
func TestCatalogJournalctl(t *testing.T) {
	jc, err := exec.LookPath("journalctl")
	if err != nil {
		t.Skip("journalctl not installed")
	}
	root := moduleRoot(t)
	scratch := t.TempDir()
	dir := filepath.Join(scratch, "usr/lib/systemd/catalog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(scratch, "var/lib/systemd/catalog"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, catalogPath))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "herald.catalog"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(jc, "--root="+scratch, "--update-catalog").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("journalctl --update-catalog: %v\n%s", err, out)
	}
	out, err := exec.Command(jc, "--root="+scratch, "--list-catalog").Output()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v", err)
	}
	for _, m := range Messages {
		want := m.ID + " herald: " + m.Subject
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("journalctl --list-catalog lacks %q:\n%s", want, out)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
