// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"fmt"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/store"
)

// Commands herald answers itself, bypassing the session's queue. Any other
// text starting with "/" goes to the agent, which may have commands of its
// own.
const (
	CmdNew    = "new"
	CmdReset  = "reset"
	CmdStop   = "stop"
	CmdStatus = "status"
	CmdHelp   = "help"
	// CmdApprove and CmdDeny answer the agent's pending approval request.
	CmdApprove = "approve"
	CmdDeny    = "deny"
)

const helpText = `Commands:
/new (or /reset) — cancel the current reply and start a new conversation
/stop — cancel the current reply and drop queued messages
/status — what herald is doing for this conversation
/approve, /deny — answer the agent's request to run a tool
/help — this text
Anything else goes to the agent.`

// ParseCommand returns the herald command in text ("new", "stop", ...) or
// "" if text is not one. A bot-name suffix (/status@my_bot) and arguments
// are ignored.
func ParseCommand(text string) string {
	t := strings.TrimSpace(text)
	if !strings.HasPrefix(t, "/") {
		return ""
	}
	word, _, _ := strings.Cut(t[1:], " ")
	word, _, _ = strings.Cut(word, "\n")
	word, _, _ = strings.Cut(word, "@")
	switch w := strings.ToLower(word); w {
	case CmdNew, CmdReset, CmdStop, CmdStatus, CmdHelp, CmdApprove, CmdDeny:
		return w
	}
	return ""
}

// commandLocked runs a command: state changes happen now, under the lock,
// so a following message sees them; the store writes and the reply happen
// in a goroutine.
func (d *Dispatcher) commandLocked(s *session, it *item, cmd string) {
	var dropped []int64
	var text string
	var answer func() string // run in the goroutine, sets text
	reset := false
	cancelTurn := func() bool {
		if s.turn == nil || s.turn.endState != store.Pending {
			return false
		}
		s.turn.endState = store.Dropped
		s.turn.cancel(agent.ErrStopRequested)
		dropped = append(dropped, s.turn.item.id)
		return true
	}
	dropQueue := func() int {
		n := len(s.queue)
		for _, q := range s.queue {
			dropped = append(dropped, q.id)
		}
		s.queue = nil
		d.queued -= n
		d.metrics.QueueDepth(d.queued)
		if s.retryTimer != nil {
			s.retryTimer.Stop()
			s.retryTimer = nil
		}
		return n
	}
	switch cmd {
	case CmdStop:
		cancelled := cancelTurn()
		n := dropQueue()
		switch {
		case cancelled && n > 0:
			text = fmt.Sprintf("Stopped. %d queued %s dropped.", n, plural(n, "message", "messages"))
		case cancelled:
			text = "Stopped."
		case n > 0:
			text = fmt.Sprintf("Dropped %d queued %s.", n, plural(n, "message", "messages"))
		default:
			text = "Nothing to stop."
		}
	case CmdNew, CmdReset:
		cancelTurn()
		dropQueue()
		reset = true
		text = "Started a new conversation."
	case CmdStatus:
		text = d.statusTextLocked(s)
	case CmdHelp:
		text = helpText
	case CmdApprove, CmdDeny:
		answer = func() string { return d.answerApproval(it, cmd) }
	}
	// Drain waits for a command's reply like for a turn's: it is
	// committed to the outbox (and its delivery started) before the count
	// drops, so a stop right after a command does not leave its answer to
	// the next instance.
	d.commands++
	ps := s.part
	if ps != nil {
		ps.commands++
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() {
			d.mu.Lock()
			d.commands--
			if ps != nil {
				ps.commands--
			}
			d.mu.Unlock()
			d.signal()
		}()
		ctx := d.bg()
		if answer != nil {
			text = answer()
		}
		if len(dropped) > 0 {
			if err := d.store.SetState(ctx, dropped, store.Dropped); err != nil {
				d.log.WithError(err).Error("cannot record dropped messages")
			}
		}
		if reset {
			gen, err := d.store.ResetSession(ctx, s.key)
			if err != nil {
				d.log.WithError(err).Error("cannot reset the session")
				text = "Sorry, the conversation could not be reset."
			} else {
				d.mu.Lock()
				d.gens[it.key] = gen
				d.mu.Unlock()
			}
		}
		d.finish(it, store.Done, text, nil)
		d.mu.Lock()
		d.untrackLocked(it.id)
		for _, id := range dropped {
			// The running turn's own id is untracked when its goroutine
			// ends; queued ones end here.
			if s.turn == nil || s.turn.item.id != id {
				d.untrackLocked(id)
			}
		}
		d.mu.Unlock()
	}()
}

func (d *Dispatcher) statusTextLocked(s *session) string {
	var b strings.Builder
	if s.turn != nil && s.turn.endState == store.Pending {
		fmt.Fprintf(&b, "Working on a reply (started %s ago).", time.Since(s.turn.started).Round(time.Second))
	} else {
		b.WriteString("Idle.")
	}
	if n := len(s.queue); n > 0 {
		fmt.Fprintf(&b, " %d %s queued.", n, plural(n, "message", "messages"))
	}
	if n := len(s.outq); n > 0 {
		fmt.Fprintf(&b, " %d %s waiting for delivery.", n, plural(n, "reply part", "reply parts"))
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
