// SPDX-License-Identifier: Apache-2.0

package media_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/media"
)

func TestParseReply(t *testing.T) {
	T := func(s string) media.Segment { return media.Segment{Text: s} }
	M := func(src, alt string) media.Segment { return media.Segment{Source: src, Alt: alt} }
	cases := []struct {
		in   string
		want []media.Segment
	}{
		{"just text", []media.Segment{T("just text")}},
		{"", nil},
		{"Here:\n![a chart](https://x.test/c.png)\nDone.", []media.Segment{T("Here:"), M("https://x.test/c.png", "a chart"), T("Done.")}},
		{"see ![](http://a/b.png \"title\") inline", []media.Segment{T("see"), M("http://a/b.png", ""), T("inline")}},
		{"Report:\n  MEDIA: /srv/out/r.pdf\nbye", []media.Segment{T("Report:"), M("/srv/out/r.pdf", ""), T("bye")}},
		{"MEDIA: https://a/x.ogg", []media.Segment{M("https://a/x.ogg", "")}},
		{"media: https://a/x.ogg", []media.Segment{T("media: https://a/x.ogg")}},
		{"MEDIA: two words", []media.Segment{T("MEDIA: two words")}},
		{"```\n![x](http://a/b.png)\nMEDIA: /x\n```\nafter", []media.Segment{T("```\n![x](http://a/b.png)\nMEDIA: /x\n```\nafter")}},
		{"use `![x](http://a/b.png)` syntax", []media.Segment{T("use `![x](http://a/b.png)` syntax")}},
		{"![a](http://1) ![b](http://2)", []media.Segment{M("http://1", "a"), M("http://2", "b")}},
		{"not an image ![broken](", []media.Segment{T("not an image ![broken](")}},
		{"![x](<http://a/b c.png>)", []media.Segment{M("http://a/b c.png", "x")}},
		{"![x](<http://a", []media.Segment{T("![x](<http://a")}},
	}
	for _, c := range cases {
		got := media.ParseReply(c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseReply(%q)\n got %#v\nwant %#v", c.in, got, c.want)
		}
	}
}

// FuzzParseReply: never panics; each segment is text or media, not both;
// text is trimmed and never empty; and the segments, concatenated in order
// (alt text before source) with whitespace removed, are a subsequence of
// the input with whitespace removed: nothing is invented or reordered. An
// input without "![" or "MEDIA:" is one text segment, unchanged but trimmed.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		"a ![b](c) d", "MEDIA: /x\ny", "```\n![b](c)\n```", "`![b](c)`", "![](", "![a](b \"t\")",
		"  MEDIA:   https://x  \n", "```", "![a]()", "!![a](b)", "`` ` ``![a](b)", "\r\nMEDIA: x\r\n",
		"![x](<a b>)", "text\n\n![a](http://x/y.png)\n\nMEDIA: /tmp/f.pdf\nmore",
	} {
		f.Add(s)
	}
	noSpace := func(s string) string { return strings.Join(strings.Fields(s), "") }
	f.Fuzz(func(t *testing.T, in string) {
		segs := media.ParseReply(in)
		var out strings.Builder
		for _, s := range segs {
			if (s.Text == "") == (s.Source == "") {
				t.Fatalf("segment %#v is neither or both", s)
			}
			if s.Text != "" && strings.TrimSpace(s.Text) != s.Text {
				t.Fatalf("untrimmed %q", s.Text)
			}
			out.WriteString(s.Text + s.Alt + s.Source)
		}
		if !isSubsequence(noSpace(out.String()), noSpace(in)) {
			t.Fatalf("segments %#v are not drawn in order from %q", segs, in)
		}
		if !strings.Contains(in, "![") && !strings.Contains(in, "MEDIA:") {
			want := strings.TrimSpace(in)
			if (want == "" && len(segs) != 0) || (want != "" && (len(segs) != 1 || segs[0].Text != want)) {
				t.Fatalf("plain %q became %#v", in, segs)
			}
		}
	})
}

func isSubsequence(sub, s string) bool {
	i := 0
	for j := 0; j < len(s) && i < len(sub); j++ {
		if s[j] == sub[i] {
			i++
		}
	}
	return i == len(sub)
}
