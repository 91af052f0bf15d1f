// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// Per-user budgets (limits.per_user). A message over a budget is stored
// refused, without its text, and never reaches the agent; its sender is
// told once per period when they can continue.

// UserLimits are the per-user budgets; zero values mean no limit.
type UserLimits struct {
	TurnsPerMinute int
	TurnsPerDay    int
	MaxQueued      int
	// Exempt holds user ids ("ID" or "PLATFORM:ID") without limits.
	Exempt []string
	// ExemptAllowedUsers exempts each platform's allowed_users.
	ExemptAllowedUsers bool
}

func (l UserLimits) none() bool {
	return l.TurnsPerMinute == 0 && l.TurnsPerDay == 0 && l.MaxQueued == 0
}

// exempt reports whether the sender of m has no limits: listed in Exempt,
// allowlisted with ExemptAllowedUsers, or an operator (a turn of the API).
func (d *Dispatcher) exempt(p *platform, m *message.Inbound) bool {
	l := d.opts.Limits
	if strings.HasPrefix(m.EventID, TurnEventID("")) || l.ExemptAllowedUsers && p.allowed[m.SenderID] {
		return true
	}
	for _, u := range l.Exempt {
		if u == m.SenderID || u == m.Platform+":"+m.SenderID {
			return true
		}
	}
	return false
}

// addInbound stores a message that may talk to the agent, charging its
// sender's budget. over is set when the message went over it: it is then
// stored refused.
func (d *Dispatcher) addInbound(ctx context.Context, p *platform, key string, m *message.Inbound) (int64, bool, *store.OverBudget, error) {
	l := d.opts.Limits
	if l.none() || ParseCommand(m.Text) != "" || m.Button != "" || d.exempt(p, m) {
		id, dup, err := d.store.AddInbound(ctx, key, m, store.Pending)
		return id, dup, nil, err
	}
	if l.MaxQueued > 0 && d.queuedFor(m.Platform, m.SenderID) >= l.MaxQueued {
		redacted := *m
		redacted.Text = ""
		id, dup, err := d.store.AddInbound(ctx, key, &redacted, store.Refused)
		return id, dup, &store.OverBudget{Period: "queue", Limit: l.MaxQueued, Notify: true}, err
	}
	return d.store.AddInboundBudget(ctx, key, m, store.Budget{PerMinute: l.TurnsPerMinute, PerDay: l.TurnsPerDay})
}

// queuedFor counts the sender's messages waiting for or in a turn.
func (d *Dispatcher) queuedFor(platform, user string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, s := range d.sessions {
		for _, it := range s.queue {
			if it.msg.Platform == platform && it.msg.SenderID == user {
				n++
			}
		}
		if t := s.turn; t != nil && t.item.msg.Platform == platform && t.item.msg.SenderID == user {
			n++
		}
	}
	return n
}

// overBudget counts and logs a message over its sender's budget, and tells
// the sender, once per period, when they can continue.
func (d *Dispatcher) overBudget(p *platform, id int64, key string, m *message.Inbound, over *store.OverBudget) {
	d.metrics.Inbound(m.Platform, "over_budget")
	d.log.WithFields(logrus.Fields{"platform": m.Platform, "sender": m.SenderID, "limit": over.Period, "until": over.Until}).
		Infof("user %q is over limits.per_user (%d per %s); the message does not reach the agent", m.SenderID, over.Limit, over.Period)
	if !over.Notify {
		return
	}
	d.mu.Lock()
	if over.Period == "queue" {
		// One notice per refusal interval, as for refusals.
		sender := m.Platform + "\x00" + m.SenderID + "\x00queue"
		if last, ok := d.refusals[sender]; ok && time.Since(last) < d.opts.RefusalInterval {
			d.mu.Unlock()
			return
		}
		d.refusals[sender] = time.Now()
	}
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		d.finish(&item{id: id, key: key, msg: *m}, store.Refused, overBudgetText(over), nil)
	}()
}

func overBudgetText(o *store.OverBudget) string {
	switch o.Period {
	case "queue":
		return fmt.Sprintf("You have %d messages waiting for an answer, the most allowed. Please send more once the agent has answered.", o.Limit)
	case "minute":
		return fmt.Sprintf("You have sent %d messages this minute, the most allowed. You can continue at %s UTC.", o.Limit, o.Until.UTC().Format("15:04:05"))
	}
	return fmt.Sprintf("You have sent %d messages today, the most allowed. You can continue at %s UTC.", o.Limit, o.Until.UTC().Format("2006-01-02 15:04"))
}
