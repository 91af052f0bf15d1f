// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"strings"
	"unicode/utf8"
)

// Split cuts text into parts of at most limit Unicode code points each,
// preferring paragraph breaks, then line breaks, then spaces. A part that
// ends inside a fenced code block (```lang) gets the fence closed, and the
// next part reopens it with the same info string, so every part renders on
// its own.
func Split(text string, limit int) []string {
	if limit < 16 {
		limit = 16
	}
	if runesAtMost(text, limit) {
		return []string{text}
	}
	var parts []string
	reopen := "" // fence line to prepend to the next part, e.g. "```go\n"
	rest := text
	for rest != "" {
		prefix := reopen
		budget := limit - utf8.RuneCountInString(prefix)
		// Reserve room to close a fence we might end inside.
		const closeFence = "\n```"
		if runesAtMost(rest, budget) {
			parts = append(parts, prefix+rest)
			break
		}
		budget -= utf8.RuneCountInString(closeFence)
		if budget < 8 {
			budget = 8
		}
		cut := cutPoint(rest, budget)
		chunk := rest[:cut]
		rest = strings.TrimLeft(rest[cut:], " ")
		open, info := fenceState(prefix + chunk)
		body := prefix + strings.TrimRight(chunk, " ")
		if open {
			body = strings.TrimRight(body, "\n") + closeFence
			reopen = "```" + info + "\n"
			if utf8.RuneCountInString(reopen) > limit/4 {
				// A long info string would eat the next part's budget.
				reopen = "```\n"
			}
		} else {
			reopen = ""
		}
		parts = append(parts, body)
		rest = strings.TrimLeft(rest, "\n")
		if rest == "" && open {
			// Nothing left: the fence was closed by us.
			break
		}
	}
	return parts
}

// runesAtMost reports whether s has at most n code points. It reads at
// most n+1 of them, so that Split stays linear in the length of the text
// (counting all of the rest for every part made it quadratic).
func runesAtMost(s string, n int) bool {
	if len(s) <= n {
		return true
	}
	for i := range s {
		if n == 0 {
			return i == len(s)
		}
		n--
	}
	return true
}

// cutPoint returns a byte offset ≤ the byte offset of the budget-th rune,
// at the best break found in the last half of the window.
func cutPoint(s string, budget int) int {
	end := len(s)
	n := 0
	for i := range s {
		if n == budget {
			end = i
			break
		}
		n++
	}
	window := s[:end]
	min := len(window) / 2
	for _, sep := range []string{"\n\n", "\n", " "} {
		if i := strings.LastIndex(window, sep); i >= min && i > 0 {
			return i + len(sep)
		}
	}
	return end
}

// fenceState reports whether s ends inside a ``` fence and the info string
// of that fence.
func fenceState(s string) (open bool, info string) {
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "```") {
			if open {
				open, info = false, ""
			} else {
				open, info = true, strings.TrimSpace(strings.TrimPrefix(t, "```"))
			}
		}
	}
	return open, info
}

// CutMarker ends the last part of a reply that was cut at
// dispatch.max_reply_parts.
const CutMarker = "\n\n[… reply cut: too long to send in full]"

// Cut keeps the first max of parts (as Split made them for limit) and ends
// the last one kept with CutMarker, within limit.
func Cut(parts []string, max, limit int) []string {
	if len(parts) <= max {
		return parts
	}
	out := append([]string(nil), parts[:max]...)
	last := ""
	if budget := limit - utf8.RuneCountInString(CutMarker); budget >= 16 {
		last = strings.TrimRight(Split(out[max-1], budget)[0], " \n")
	}
	out[max-1] = last + CutMarker
	return out
}
