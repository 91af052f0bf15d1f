// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var date = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func render(t *testing.T) []byte {
	t.Helper()
	src, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	page, err := Render(src, "1.2.3", date)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

// TestRenderREADME renders the real README: every section is there, no
// Markdown is left over, and the output is the same on every run.
func TestRenderREADME(t *testing.T) {
	page := render(t)
	s := string(page)
	for _, want := range []string{
		`.TH HERALD 8 "2024-05-06" "herald 1.2.3" "System Administration"`,
		".SH NAME\nherald \\- ",
		".SH SYNOPSIS\n",
		".SH FILES\n",
		".SH SEE ALSO\n",
		`\fBherald check\-config FILE\fP`,
		"\n.TP\n\\fB78\\fP (config)\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, sec := range Sections {
		if !strings.Contains(s, ".SH \""+sec.Man+"\"\n") {
			t.Errorf("section %s (README %q) missing", sec.Man, sec.README)
		}
	}
	for _, bad := range []string{"**", "`", "](", "\n\n", "| ---"} {
		if strings.Contains(s, bad) {
			t.Errorf("page contains %q (unconverted Markdown or a blank line)", bad)
		}
	}
	for i, r := range s {
		if r > 127 {
			t.Fatalf("non-ASCII %q at byte %d: groff without preconv misreads it", r, i)
		}
	}
	if again := render(t); !bytes.Equal(page, again) {
		t.Error("two renderings differ")
	}
}

// TestGroffClean formats the page with every groff warning enabled, as
// lintian's manpage check does with man --warnings.
func TestGroffClean(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff not installed")
	}
	f := filepath.Join(t.TempDir(), "herald.8")
	if err := os.WriteFile(f, render(t), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", f)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("groff: %v\n%s", err, stderr.String())
	}
}

func TestInline(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"**Start.** go", `\fBStart.\fP go`},
		{"run `herald --config x`", `run \fBherald \-\-config x\fP`},
		{"see [`packaging/herald.yaml`](packaging/herald.yaml)", `see \fB/etc/herald/herald.yaml\fP`},
		{"[the fake](pkg/x/README.md) speaks", "the fake speaks"},
		{`a\b – c … d`, `a\eb \(en c \&... d`},
		{"ünïcode", `\[u00FC]n\[u00EF]code`},
	} {
		if got := inline(tc.in); got != tc.want {
			t.Errorf("inline(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBlocks(t *testing.T) {
	md := strings.Split(strings.TrimSpace(`
First line
.starts with a dot. Second sentence.

- item one
  continued
- item two

`+"```sh\nmake deb  # -x\n```"+`

| Code | Name | Meaning | Restarted |
|---|---|---|---|
| 1 | failure | boom | yes |
| 2 | – | quiet | – |
`), "\n")
	var b bytes.Buffer
	if err := (&writer{w: &b}).blocks(md); err != nil {
		t.Fatal(err)
	}
	want := `.PP
First line .starts with a dot.
Second sentence.
.IP \(bu 2
item one continued
.IP \(bu 2
item two
.PP
.RS 4
.nf
\f(CRmake deb  # \-x\fP
.fi
.RE
.TP
\fB1\fP (failure)
boom.
Restarted: yes.
.TP
\fB2\fP
quiet
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if err := (&writer{w: &b}).blocks([]string{"```", "open"}); err == nil {
		t.Error("unterminated code block accepted")
	}
	if err := (&writer{w: &b}).blocks([]string{"| a | b |", "|---|---|", "| 1 |"}); err == nil {
		t.Error("short table row accepted")
	}
}
