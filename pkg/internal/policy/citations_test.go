// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// citation patterns: documents a reader of the repository cannot open
// (working notes kept outside it, section numbers of such notes, the brief
// of the project, an unnamed system taken as the model). The patterns are written
// so that this file does not match them itself. A section sign is allowed
// after an RFC number ("RFC 9110 §10.2.3"): those documents are public.
var citations = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`(?i)\bnotes[/]`), "a path into notes outside the repository"},
	{regexp.MustCompile(`(?i)\bthe[ ]notes\b|\bnotes[ ]\x{00a7}`), "notes outside the repository"},
	{regexp.MustCompile(`(?i)\.\.[/]shared\b`), "a path outside the repository"},
	{regexp.MustCompile(`(?i)\breference[ -](gateway|system|implementation)\b`), "an unnamed system taken as the model; state the fact itself"},
	{regexp.MustCompile(`(?i)\bproject[ ]brief\b`), "the brief of the project"},
}

// sectionSign finds section signs and what precedes them; rfcSection is the
// allowed form.
var (
	sectionSign = regexp.MustCompile(`\x{00a7}`)
	rfcSection  = regexp.MustCompile(`RFC ?\d+,? ?$`)
	// mdName is a bare file name of a Markdown document (not part of a
	// path or URL).
	mdName = regexp.MustCompile("(?:^|[\\s(`'\"])([A-Za-z0-9_-]+\\.md)\\b")
)

// commentLead strips what starts a comment line, so that a phrase broken
// across two comment lines is found.
var commentLead = regexp.MustCompile(`(?m)^[ \t]*(//+|#+|\*+|--)?[ \t]*`)

// TestNoCitationsOutsideRepository: comments, tests and documents say what
// they need to say instead of citing documents a reader of the repository
// cannot open. Every text file is checked (Go, Markdown, shell, units,
// YAML, the Makefile), with lines joined so a citation split over two
// comment lines is caught.
func TestNoCitationsOutsideRepository(t *testing.T) {
	type textFile struct{ rel, text string }
	var texts []textFile
	mdHere := map[string]bool{}
	walkRepo(t, func(p, rel string) {
		name := filepath.Base(p)
		if strings.HasSuffix(name, ".md") {
			mdHere[name] = true
		}
		if name == "go.sum" {
			return
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return // binary
		}
		joined := strings.Join(strings.Fields(commentLead.ReplaceAllString(string(b), "")), " ")
		texts = append(texts, textFile{rel, joined})
	})
	if len(texts) < 100 {
		t.Fatalf("only %d text files found", len(texts))
	}
	excerpt := func(s string, i, j int) string {
		from, to := max(0, i-40), min(len(s), j+40)
		return strings.ToValidUTF8(s[from:to], "")
	}
	for _, f := range texts {
		for _, c := range citations {
			for _, m := range c.re.FindAllStringIndex(f.text, -1) {
				t.Errorf("%s cites %s: …%s…", f.rel, c.what, excerpt(f.text, m[0], m[1]))
			}
		}
		for _, m := range sectionSign.FindAllStringIndex(f.text, -1) {
			if !rfcSection.MatchString(f.text[max(0, m[0]-12):m[0]]) {
				t.Errorf("%s cites a section of a document (only RFC sections are public): …%s…", f.rel, excerpt(f.text, m[0], m[1]))
			}
		}
		for _, m := range mdName.FindAllStringSubmatchIndex(f.text, -1) {
			if name := f.text[m[2]:m[3]]; !mdHere[name] {
				t.Errorf("%s names %s, which is not in the repository: …%s…", f.rel, name, excerpt(f.text, m[2], m[3]))
			}
		}
	}
}
