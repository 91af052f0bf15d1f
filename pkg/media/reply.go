// SPDX-License-Identifier: Apache-2.0

package media

import (
	"strings"
)

// Segment is one piece of a reply: text, or a media reference.
type Segment struct {
	// Text is set for a text segment.
	Text string
	// Source is set for a media segment: the URL or path the reply named.
	Source string
	// Alt is the alt text of a Markdown image.
	Alt string
}

// IsMedia reports whether the segment is a media reference.
func (s Segment) IsMedia() bool { return s.Source != "" }

// mediaPrefix starts a media line.
const mediaPrefix = "MEDIA:"

// ParseReply splits a reply into ordered text and media segments. Media
// are Markdown images ![alt](url) and lines "MEDIA: <url-or-path>"
// (leading spaces allowed). Nothing inside fenced code blocks (```) or
// inline code (`...`) counts. Text segments are trimmed of surrounding
// blank space; empty ones are dropped.
func ParseReply(text string) []Segment {
	var segs []Segment
	var cur strings.Builder
	flush := func() {
		t := strings.TrimSpace(cur.String())
		cur.Reset()
		if t != "" {
			segs = append(segs, Segment{Text: t})
		}
	}
	inFence := false
	lines := strings.SplitAfter(text, "\n")
	for _, line := range lines {
		body := strings.TrimRight(line, "\r\n")
		trimmed := strings.TrimLeft(body, " \t")
		if strings.HasPrefix(trimmed, "```") {
			inFence = !inFence
			cur.WriteString(line)
			continue
		}
		if inFence {
			cur.WriteString(line)
			continue
		}
		if src, ok := strings.CutPrefix(trimmed, mediaPrefix); ok {
			if src = strings.TrimSpace(src); src != "" && !strings.ContainsAny(src, " \t") {
				flush()
				segs = append(segs, Segment{Source: src})
				continue
			}
		}
		scanImages(line, &cur, func(alt, src string) {
			flush()
			segs = append(segs, Segment{Source: src, Alt: alt})
		})
	}
	flush()
	return segs
}

// scanImages copies line to cur, calling img for each Markdown image
// outside inline code instead of copying it.
func scanImages(line string, cur *strings.Builder, img func(alt, src string)) {
	i := 0
	for i < len(line) {
		switch {
		case line[i] == '`':
			// Inline code: a run of n backticks up to the next run of n.
			n := 1
			for i+n < len(line) && line[i+n] == '`' {
				n++
			}
			fence := line[i : i+n]
			if end := strings.Index(line[i+n:], fence); end >= 0 {
				cur.WriteString(line[i : i+n+end+n])
				i += n + end + n
			} else {
				cur.WriteString(fence)
				i += n
			}
		case line[i] == '!' && i+1 < len(line) && line[i+1] == '[':
			alt, src, n, ok := parseImage(line[i:])
			if !ok {
				cur.WriteByte('!')
				i++
				continue
			}
			img(alt, src)
			i += n
		default:
			cur.WriteByte(line[i])
			i++
		}
	}
}

// parseImage parses "![alt](src)" or "![alt](src "title")" at the start
// of s, returning its length.
func parseImage(s string) (alt, src string, n int, ok bool) {
	closeAlt := strings.Index(s, "](")
	if closeAlt < 2 || strings.ContainsAny(s[2:closeAlt], "[]\n") {
		return "", "", 0, false
	}
	alt = s[2:closeAlt]
	rest := s[closeAlt+2:]
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return "", "", 0, false
	}
	inner := strings.TrimSpace(rest[:end])
	if i := strings.IndexAny(inner, " \t"); i >= 0 {
		inner = inner[:i] // drop a title
	}
	inner = strings.TrimSuffix(strings.TrimPrefix(inner, "<"), ">")
	if inner == "" || strings.ContainsAny(inner, "\n(") {
		return "", "", 0, false
	}
	return strings.TrimSpace(alt), inner, closeAlt + 2 + end + 1, true
}
