// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/message"
)

// ConflictAlarm is Status.Alarm while getUpdates gets 409 Conflict after
// conflict_window.
const ConflictAlarm = "409 Conflict: another getUpdates poller or a webhook uses this bot token"

// pollLimit is getUpdates' limit: the most Telegram allows.
const pollLimit = 100

// errNoProgress: a non-empty batch in which no update could be handled
// (every one malformed without an update_id). Asking again at once would
// return the same batch, so it is treated like a failed call.
var errNoProgress = errors.New("no update of the batch could be handled")

// poller is the intake loop's state. Only the loop goroutine touches it
// until Adapter.done is closed.
type poller struct {
	a       *Adapter
	inbox   adapter.Inbox
	started time.Time
	f       filter

	bo         adapter.Backoff // reconnects
	conflictBo adapter.Backoff // 409: reset only once the conflict is over
	deliverBo  adapter.Backoff // Inbox.Deliver failures
	failures   int             // consecutive failed calls

	alarm        string
	lastConflict time.Time
	last         adapter.Status // last reported, to report changes only
	fatal        bool
	// probe: the next getUpdates is a short poll (timeout 0). Set after a
	// failed call, so that a working connection shows as connected at once
	// and not only when a long poll ends (poll_timeout, 50 s by default, on
	// an idle bot).
	probe bool

	// offset is the next getUpdates offset: every update below it is
	// stored or skipped for good. sent is the offset of the last
	// getUpdates that Telegram answered (so it confirmed everything below).
	offset int64
	sent   int64
}

func newPoller(a *Adapter, inbox adapter.Inbox, started time.Time) *poller {
	return &poller{
		a:          a,
		inbox:      inbox,
		started:    started,
		f:          filter{platform: a.Name, groupMentionOnly: a.conf.GroupMentionOnly},
		bo:         adapter.Backoff{Min: a.minBackoff, Max: a.maxBackoff},
		conflictBo: adapter.Backoff{Min: a.minBackoff, Max: a.maxBackoff},
		deliverBo:  adapter.Backoff{Min: a.minBackoff, Max: a.maxBackoff},
		last:       adapter.Status{Phase: adapter.PhaseStarting},
	}
}

func (p *poller) log() *logrus.Entry { return p.a.Log }

// run validates the token with getMe, then long-polls until ctx ends or the
// token is rejected.
func (p *poller) run(ctx context.Context) {
	for {
		cctx, cancel := context.WithTimeout(ctx, p.a.conf.RequestTimeout)
		me, err := p.a.api.getMe(cctx)
		cancel()
		if err == nil {
			p.f.botID, p.f.username = me.ID, me.Username
			if me.Username == "" {
				p.log().Warn("telegram: getMe returned no username; group messages can only reach the bot by reply or command")
			}
			p.log().WithField("bot", "@"+me.Username).Info("telegram: token accepted")
			// Telegram answered: connected now, not when the first long
			// poll ends.
			p.answered()
			break
		}
		if !p.retry(ctx, "getMe", err) {
			return
		}
	}
	for {
		poll := p.a.conf.PollTimeout
		if p.probe {
			poll = 0
		}
		params := getUpdatesParams{
			Offset:         p.offset,
			Limit:          pollLimit,
			Timeout:        int(poll / time.Second),
			AllowedUpdates: p.a.conf.AllowedUpdates,
		}
		cctx, cancel := context.WithTimeout(ctx, poll+p.a.conf.RequestTimeout)
		ups, err := p.a.api.getUpdates(cctx, params)
		cancel()
		if err != nil {
			if !p.retry(ctx, "getUpdates", err) {
				return
			}
			continue
		}
		p.sent = params.Offset
		p.probe = false
		p.answered()
		if err := p.handle(ctx, ups); err != nil {
			if ctx.Err() != nil {
				return
			}
			d := p.deliverBo.Next()
			entry := p.log().WithError(err).WithField("retry_in", d.Round(time.Millisecond).String())
			switch {
			case errors.Is(err, adapter.ErrStopping):
				entry.Info("telegram: herald is stopping; updates left unconfirmed for the next instance")
			case errors.Is(err, adapter.ErrUnavailable):
				entry.Warn("telegram: message store unavailable; updates left unconfirmed and fetched again")
			case errors.Is(err, errNoProgress):
				entry.Error("telegram: getUpdates returned only unreadable updates; asking again after a backoff")
			default:
				entry.Error("telegram: updates not stored; leaving them unconfirmed and fetching them again")
			}
			if !adapter.Sleep(ctx, d) {
				return
			}
			continue
		}
		p.deliverBo.Reset()
	}
}

// handle stores a batch in order. The offset moves past an update only when
// it is stored or can never be stored; the first update the inbox refuses
// stops the batch, so the next poll fetches it again.
func (p *poller) handle(ctx context.Context, raws []json.RawMessage) error {
	handled := 0
	for _, raw := range raws {
		u, err := parseUpdate(raw)
		if err != nil {
			id := peekUpdateID(raw)
			p.skip(reasonMalformed, id, err.Error())
			if id > 0 {
				p.offset = id + 1
				handled++
			}
			continue
		}
		id := *u.UpdateID
		msg, reason, detail := p.f.inbound(&u, p.a.now())
		if msg != nil {
			err := p.inbox.Deliver(ctx, msg)
			switch {
			case err == nil:
			case errors.Is(err, message.ErrInvalid):
				p.skip(reasonInvalid, id, err.Error())
			default:
				// Ask from this update on: it is fetched again, and
				// everything before it is confirmed. A button press is
				// answered when it is fetched again.
				p.offset = id
				return fmt.Errorf("telegram: storing update %d: %w", id, err)
			}
		} else {
			p.skip(reason, id, detail)
		}
		if u.CallbackQuery != nil {
			p.answerCallback(ctx, u.CallbackQuery.ID)
		}
		p.offset = id + 1
		handled++
	}
	if len(raws) > 0 && handled == 0 {
		return errNoProgress
	}
	return nil
}

func (p *poller) skip(reason string, id int64, detail string) {
	p.a.Metrics.Rejected(reason)
	level := logrus.DebugLevel
	if reason == reasonMalformed || reason == reasonInvalid {
		level = logrus.WarnLevel
	}
	p.log().WithFields(logrus.Fields{"update_id": id, "reason": reason}).Logf(level, "telegram: update skipped: %s", detail)
}

// answered records a getUpdates answer: the intake is connected. A conflict
// alarm stays up until no 409 has been seen for conflict_window, because two
// pollers of one token take turns: each sees answers between its 409s.
func (p *poller) answered() {
	p.failures = 0
	p.bo.Reset()
	now := p.a.now()
	if p.alarm != "" && now.Sub(p.lastConflict) >= p.a.conf.ConflictWindow {
		p.log().Info("telegram: no 409 Conflict for conflict_window; alarm cleared")
		p.alarm = ""
	}
	if p.alarm == "" {
		p.conflictBo.Reset()
	}
	p.setStatus(adapter.Status{Phase: adapter.PhaseConnected, Alarm: p.alarm})
}

// retry classifies a failed call, reports it and waits before the next
// attempt. It returns false when the loop must end: ctx is done or the
// token was rejected.
func (p *poller) retry(ctx context.Context, op string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	err = fmt.Errorf("telegram: %s: %w", op, err)
	p.probe = true
	now := p.a.now()
	var ae *apiError
	isAPI := errors.As(err, &ae)
	var delay time.Duration
	p.failures++
	entry := p.log().WithError(err)
	switch {
	case isAPI && (ae.Code == 401 || ae.Code == 404):
		// 401: token revoked; 404: the token does not name a bot.
		err = fmt.Errorf("%w (%w: check the token with @BotFather)", err, adapter.ErrUnauthorized)
		p.fatal = true
		logging.Event(p.log(), logging.MsgAdapterFatal).WithError(err).Error("telegram: bot token rejected; intake stopped, not retrying")
		p.setStatus(adapter.Status{Phase: adapter.PhaseFatal, Err: err})
		return false
	case isAPI && ae.Code == 409:
		p.lastConflict = now
		delay = p.conflictBo.Next()
		entry = entry.WithField("retry_in", delay.Round(time.Millisecond).String())
		if since := now.Sub(p.started); since < p.a.conf.ConflictWindow {
			entry.Warn("telegram: 409 Conflict within conflict_window after start, most likely the previous instance's last poll; retrying")
		} else {
			p.alarm = ConflictAlarm
			entry.Error("telegram: 409 Conflict: another process polls this bot token or a webhook is set; stop it or delete the webhook. Retrying with backoff")
		}
	case isAPI && ae.Code == 429 && ae.RetryAfter > 0:
		delay = ae.RetryAfter
		entry.WithField("retry_in", delay.String()).Warn("telegram: rate limited; waiting retry_after")
	default:
		delay = p.bo.Next()
		entry = entry.WithField("retry_in", delay.Round(time.Millisecond).String())
		if p.failures >= 5 {
			entry.Error("telegram: intake keeps failing; reconnecting with backoff")
		} else {
			entry.Warn("telegram: intake failed; reconnecting with backoff")
		}
	}
	p.a.Metrics.Reconnect()
	p.setStatus(adapter.Status{Phase: adapter.PhaseReconnecting, RetryAt: now.Add(delay), Err: err, Alarm: p.alarm})
	return adapter.Sleep(ctx, delay)
}

// setStatus reports st unless it repeats the last Connected report.
func (p *poller) setStatus(st adapter.Status) {
	if st.Phase == adapter.PhaseConnected && p.last.Phase == adapter.PhaseConnected && p.last.Alarm == st.Alarm {
		return
	}
	p.last = st
	p.a.Life.Report(st)
}
