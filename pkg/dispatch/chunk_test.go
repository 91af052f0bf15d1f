// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	long := strings.Repeat("word ", 100) // 500 chars
	code := "intro\n```go\n" + strings.Repeat("fmt.Println(\"x\")\n", 20) + "```\nafter"
	tests := []struct {
		name  string
		text  string
		limit int
	}{
		{"short", "hello", 100},
		{"words", long, 64},
		{"paragraphs", strings.Repeat("para one line.\n\n", 30), 50},
		{"unicode", strings.Repeat("日本語のテキスト", 50), 30},
		{"code fence", code, 80},
		{"no spaces", strings.Repeat("x", 300), 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := Split(tt.text, tt.limit)
			for i, p := range parts {
				if n := utf8.RuneCountInString(p); n > tt.limit {
					t.Errorf("part %d has %d runes, limit %d: %q", i, n, tt.limit, p)
				}
				if open, _ := fenceState(p); open {
					t.Errorf("part %d ends inside a code fence: %q", i, p)
				}
				if !utf8.ValidString(p) {
					t.Errorf("part %d is not valid UTF-8", i)
				}
			}
			// No content lost: joining the parts without fences and white
			// space gives the original without white space.
			strip := func(s string) string {
				s = strings.ReplaceAll(s, "```go", "")
				s = strings.ReplaceAll(s, "```", "")
				return strings.Join(strings.Fields(s), "")
			}
			if got, want := strip(strings.Join(parts, "")), strip(tt.text); got != want {
				t.Errorf("content changed:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestSplitReopensFence(t *testing.T) {
	code := "```python\n" + strings.Repeat("print('hello world')\n", 10) + "```"
	parts := Split(code, 60)
	if len(parts) < 2 {
		t.Fatalf("got %d parts", len(parts))
	}
	for i, p := range parts[1:] {
		if !strings.HasPrefix(p, "```python\n") {
			t.Errorf("part %d does not reopen the fence: %q", i+1, p)
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("hello world", 20)
	f.Add("```\ncode\n```\n", 16)
	f.Add(strings.Repeat("ab ", 40), 17)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		if limit < 16 || limit > 5000 || !utf8.ValidString(s) {
			return
		}
		for _, p := range Split(s, limit) {
			if n := utf8.RuneCountInString(p); n > limit {
				t.Fatalf("part of %d runes > %d", n, limit)
			}
		}
	})
}

func TestCut(t *testing.T) {
	code := "```go\n" + strings.Repeat("fmt.Println(\"x\")\n", 200) + "```\n"
	parts := Split(code, 80)
	cut := Cut(parts, 2, 80)
	if len(cut) != 2 || cut[0] != parts[0] {
		t.Fatalf("Cut kept %d parts, want the first 2 unchanged", len(cut))
	}
	last := cut[1]
	if n := utf8.RuneCountInString(last); n > 80 {
		t.Errorf("last part has %d characters, limit 80", n)
	}
	if !strings.HasSuffix(last, CutMarker) {
		t.Errorf("last part %q lacks the marker", last)
	}
	if open, _ := fenceState(strings.TrimSuffix(last, CutMarker)); open {
		t.Errorf("last part leaves a code fence open: %q", last)
	}
	if got := Cut(parts[:2], 2, 80); len(got) != 2 || strings.Contains(got[1], CutMarker) {
		t.Errorf("a reply within the cap was changed: %q", got)
	}
}
