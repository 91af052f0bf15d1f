// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// echo is the built-in agent: it answers "echo: " followed by the last user
// message, streamed word by word. It lets herald run, demo and be tested
// end to end without any backend.
type echo struct {
	delay time.Duration // between words; 0 streams without timers
}

// KeepsHistory is true: echo needs none, so the caller need not send it.
func (e *echo) KeepsHistory() bool { return true }

func (e *echo) Complete(ctx context.Context, req Request, ev Events) (string, error) {
	if ctx.Err() != nil {
		return "", wrapCtx(ctx)
	}
	reply := "echo: " + echoText(lastUser(req.Messages))
	var t *time.Timer
	for i, rest := 0, reply; rest != ""; i++ {
		n := nextWord(rest)
		if i > 0 && e.delay > 0 {
			if t == nil {
				t = time.NewTimer(e.delay)
				defer t.Stop()
			} else {
				t.Reset(e.delay)
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return "", wrapCtx(ctx)
			}
		}
		ev.delta(rest[:n])
		rest = rest[n:]
	}
	return reply, nil
}

// nextWord returns the length of the leading white space of s plus the word
// after it, so the pieces of s concatenate back to s.
func nextWord(s string) int {
	i := 0
	word := false
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		space := unicode.IsSpace(r)
		if word && space {
			break
		}
		if !space {
			word = true
		}
		i += n
	}
	return i
}

// Interface guards
var _ Agent = (*echo)(nil)

// echoText puts the media notes of a user message ("[image 1280×720 png,
// 84 KiB] <signed link>" lines, as the dispatcher writes them) first,
// without their links, followed by the text: "[image 1280×720 png, 84 KiB]
// caption". A message without such lines is returned unchanged.
func echoText(s string) string {
	var notes, text []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "[") {
			if i := strings.LastIndex(line, "] "); i > 0 && strings.Contains(line[i+2:], "/media/") && !strings.Contains(line[i+2:], " ") {
				notes = append(notes, line[:i+1])
				continue
			}
			if strings.HasSuffix(line, "]") && strings.Contains(line, " could not be fetched: ") {
				notes = append(notes, line)
				continue
			}
		}
		text = append(text, line)
	}
	if len(notes) == 0 {
		return s
	}
	return strings.TrimSpace(strings.Join(notes, " ") + " " + strings.Join(text, "\n"))
}
