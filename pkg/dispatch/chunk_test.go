// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"flag"
	"strings"
	"testing"
	"unicode"
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

// FuzzSplit checks that every part fits the limit, that the number of
// parts stays proportional to the text, for text without code fences
// (whose closing and reopening add text) that nothing but whitespace is
// lost or added, and that Cut keeps its cap.
func FuzzSplit(f *testing.F) {
	f.Add("hello world", 20)
	f.Add("```\ncode\n```\n", 16)
	f.Add(strings.Repeat("ab ", 40), 17)
	f.Add(strings.Repeat("字", 100)+strings.Repeat(" a", 100), 16)
	// A 4 MiB agent reply (about 1,000 Telegram messages).
	// Split takes seconds over it; while fuzzing, a 64 KiB one keeps the
	// executions fast.
	size := 4 << 20
	if fl := flag.Lookup("test.fuzz"); fl != nil && fl.Value.String() != "" {
		size = 64 << 10
	}
	f.Add(strings.Repeat("All work and no play makes Jack a dull boy.\n", size/44), 4096)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		if limit < 16 || limit > 5000 || !utf8.ValidString(s) {
			return
		}
		parts := Split(s, limit)
		for _, p := range parts {
			if n := utf8.RuneCountInString(p); n > limit {
				t.Fatalf("part of %d runes > %d", n, limit)
			}
		}
		if max := 4*len(s)/limit + 2; len(parts) > max {
			t.Fatalf("%d parts for %d bytes at limit %d", len(parts), len(s), limit)
		}
		if !strings.Contains(s, "```") {
			if got, want := dropSpace(strings.Join(parts, "")), dropSpace(s); got != want {
				t.Fatalf("parts %q do not carry the text %q", parts, s)
			}
		}
		// Cut at dispatch.max_reply_parts: at most max parts, each within
		// the limit (platform limits are far above the marker's length),
		// the last marked when parts were dropped.
		if limit < 64 {
			return
		}
		for _, max := range []int{1, 20} {
			cut := Cut(parts, max, limit)
			if len(cut) > max || len(cut) != min(max, len(parts)) {
				t.Fatalf("Cut(%d parts, %d) kept %d", len(parts), max, len(cut))
			}
			for _, p := range cut {
				if n := utf8.RuneCountInString(p); n > limit {
					t.Fatalf("cut part of %d runes > %d", n, limit)
				}
			}
			if len(parts) > max && !strings.HasSuffix(cut[len(cut)-1], CutMarker) {
				t.Fatalf("cut reply without the marker: %q", cut[len(cut)-1])
			}
		}
	})
}

func dropSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
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

func TestRunesAtMost(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want bool
	}{
		{"", 0, true},
		{"a", 0, false},
		{"abc", 3, true},
		{"abcd", 3, false},
		{"ééé", 3, true}, // 6 bytes, 3 code points
		{"éééé", 3, false},
		{"日本語", 2, false},
		{"日本語", 3, true},
	}
	for _, tt := range tests {
		if got := runesAtMost(tt.s, tt.n); got != tt.want {
			t.Errorf("runesAtMost(%q, %d) = %v, want %v", tt.s, tt.n, got, tt.want)
		}
	}
}

// BenchmarkSplitLarge splits a 4 MiB reply: linear in its length, where
// recounting the rest for every part made it take seconds.
func BenchmarkSplitLarge(b *testing.B) {
	text := strings.Repeat("word ", 4<<20/5)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Split(text, 4096)
	}
}
