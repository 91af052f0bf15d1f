// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// metaEditID marks a reply part that replaces a message shown while
// streaming (edit-in-place) instead of sending a new one.
const metaEditID = "herald_edit_message_id"

// kickDeliveryLocked starts the session's delivery goroutine if replies wait
// and none runs. One goroutine per session keeps a session's replies in
// order.
func (d *Dispatcher) kickDeliveryLocked(s *session) {
	if s.delivering || len(s.outq) == 0 || d.ctx.Err() != nil || !d.mayRunLocked(s) {
		return
	}
	s.delivering = true
	d.deliverers++
	d.wg.Add(1)
	go d.deliverLoop(s)
}

func (d *Dispatcher) deliverLoop(s *session) {
	defer d.wg.Done()
	defer d.signal()
	// Every exit clears s.delivering in the same critical section that
	// decided to exit: a reply queued in between would otherwise find the
	// flag still set, start no goroutine, and wait for the next message.
	end := func() {
		s.delivering = false
		d.deliverers--
		d.gcLocked(s)
		d.mu.Unlock()
	}
	for {
		d.mu.Lock()
		d.dropFencedLocked(s)
		if len(s.outq) == 0 || d.ctx.Err() != nil || !d.mayRunLocked(s) {
			end()
			return
		}
		dl := s.outq[0]
		p := d.platforms[dl.rec.Msg.Platform]
		wait := time.Until(dl.nextAt)
		if p == nil {
			if !d.missingWarn[dl.rec.Msg.Platform] {
				d.missingWarn[dl.rec.Msg.Platform] = true
				d.log.WithField("platform", dl.rec.Msg.Platform).Warn("replies wait for a platform that is not configured; they are delivered if it comes back")
			}
			end()
			return
		}
		if wait > 0 && d.draining {
			// Do not hold the stop for a backoff: the next instance
			// delivers it (and what queues behind it).
			end()
			return
		}
		d.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-d.drainCh:
				t.Stop()
				continue // re-checked under the lock: ends the loop
			case <-d.ctx.Done():
				t.Stop()
				continue
			}
		}
		d.attempt(s, dl, p)
	}
}

// attempt makes one delivery attempt and records its outcome.
func (d *Dispatcher) attempt(s *session, dl *delivery, p *platform) {
	msg := dl.rec.Msg
	log := d.log.WithFields(logrus.Fields{"platform": msg.Platform, "chat": msg.ChatID, "reply": dl.rec.ID, "part": msg.Part})
	pop := func() {
		d.mu.Lock()
		if len(s.outq) > 0 && s.outq[0] == dl {
			s.outq = popFront(s.outq)
			d.untrackOutLocked(dl.rec.ID)
		}
		d.mu.Unlock()
	}
	unknown := !dl.unknownSince.IsZero() && !p.Idempotent
	if unknown && p.recoverer == nil {
		// An earlier instance died during the send: the user may see the
		// reply already, and sending it again could show it twice.
		log.Warn("reply delivery outcome unknown (herald stopped during the send) and the platform has no idempotency key; not retrying")
		d.giveUp(dl, "outcome unknown: herald stopped during the send")
		d.metrics.Outbound(msg.Platform, "ambiguous")
		pop()
		return
	}
	// parent ends at the hard stop, or in cluster mode when the
	// session's partition was taken from this node.
	parent := d.sendContext(dl)
	d.prepareMediaPart(parent, p, &msg)
	d.mu.Lock()
	d.sending++
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(parent, d.opts.DeliveryTimeout)
	started := time.Now()
	marked := false
	// mark durably records that a send the platform cannot deduplicate
	// begins, so that the next instance knows its outcome is unknown if
	// this one dies before recording it.
	mark := func() error {
		if p.Idempotent {
			return nil
		}
		if err := d.store.AttemptStarted(ctx, dl.rec.ID, started); err != nil {
			return fmt.Errorf("dispatch: %w: not sending: %w", adapter.ErrTemporary, err)
		}
		marked = true
		return nil
	}
	var res adapter.SendResult
	var err error
	switch id := msg.Meta[metaEditID]; {
	case unknown:
		// The lost send was a new message (edits are not marked): look
		// for it, or send it anew, as the platform allows.
		delete(msg.Meta, metaEditID)
		if err = mark(); err == nil {
			res, err = p.recoverer.Recover(ctx, &msg, dl.unknownSince)
		}
	case id != "" && p.editor != nil:
		err = p.editor.Edit(ctx, &msg, id)
		res.MessageID = id
		if err != nil && !adapter.Retryable(err) {
			// The streamed message cannot take the final text (Feishu
			// allows 20 edits, a message may be gone): send it anew
			// rather than lose the reply.
			log.WithError(err).Info("final edit of a streamed reply refused; sending it as a new message")
			delete(msg.Meta, metaEditID)
			delete(dl.rec.Msg.Meta, metaEditID)
			if err = mark(); err == nil {
				res, err = p.Adapter.Send(ctx, &msg)
			}
		}
	default:
		if err = mark(); err == nil {
			res, err = p.Adapter.Send(ctx, &msg)
		}
	}
	if err != nil && msg.Media != nil && !unknown && uploadRefused(err) {
		// The platform refused the file itself (too large, a type it
		// does not take): nothing was shown, so the part's key is
		// unused. Send its link and the reason instead; never drop it.
		log.WithError(err).Warn("the platform refused a file; sending its link instead")
		d.metrics.MediaFetch("out", "upload_refused", 0)
		msg = uploadFallback(msg, err)
		res, err = p.Adapter.Send(ctx, &msg)
	}
	cancel()
	d.mu.Lock()
	d.sending--
	d.mu.Unlock()
	dl.attempts++
	// A send that failed before it reached the platform leaves no unknown
	// outcome behind; one that may have reached it keeps its mark.
	settleFailed := func() {
		if !marked || unknown || errors.Is(err, adapter.ErrAmbiguous) {
			return
		}
		if serr := d.store.AttemptFailed(d.bg(), dl.rec.ID); serr != nil {
			log.WithError(serr).Error("cannot record that a send failed; the next instance will take its outcome for unknown")
		}
	}
	if parent.Err() != nil && err != nil {
		// Cancelled by the hard stop (or its partition moved): the attempt
		// does not count, the next instance (or owner) retries it.
		settleFailed()
		return
	}
	bg := d.bg()
	switch {
	case err == nil:
		if serr := d.store.Delivered(bg, dl.rec.ID, dl.attempts, res.MessageID); serr != nil {
			log.WithError(serr).Error("reply delivered but not recorded; it may be sent again after a restart")
		}
		d.metrics.Outbound(msg.Platform, "delivered")
		d.sendOutcome(dl, "sent")
		pop()
	case errors.Is(err, adapter.ErrAmbiguous) && !p.Idempotent && (p.recoverer == nil || dl.attempts >= d.opts.MaxAttempts):
		// The platform may show it already and cannot deduplicate a retry:
		// sending again risks a duplicate, so stop here: a reply shown twice
		// is worse than an unknown outcome the log reports.
		log.WithError(err).Warn("reply delivery outcome unknown and the platform has no idempotency key; not retrying")
		d.giveUp(dl, "outcome unknown: "+err.Error())
		d.metrics.Outbound(msg.Platform, "ambiguous")
		pop()
	case errors.Is(err, adapter.ErrNotResent):
		log.WithError(err).Warn("reply delivery outcome unknown; the platform's policy is not to send it again")
		d.giveUp(dl, err.Error())
		d.metrics.Outbound(msg.Platform, "ambiguous")
		pop()
	case !adapter.Retryable(err) || dl.attempts >= d.opts.MaxAttempts:
		log.WithError(err).WithField("attempts", dl.attempts).Warn("giving up on a reply")
		d.giveUp(dl, err.Error())
		d.metrics.Outbound(msg.Platform, "failed")
		pop()
	default:
		settleFailed()
		if errors.Is(err, adapter.ErrAmbiguous) && !p.Idempotent && dl.unknownSince.IsZero() {
			// Retried through the adapter's Recoverer, which looks for
			// the message before it sends again.
			dl.unknownSince = started
		}
		delay := adapter.Backoff{Min: d.opts.InitialBackoff, Max: d.opts.MaxBackoff, Jitter: 0.2}.Delay(dl.attempts - 1)
		if ra, ok := adapter.RetryAfter(err); ok {
			if ra > d.opts.MaxRetryAfter {
				log.WithFields(logrus.Fields{"retry_after": ra, "max_retry_after": d.opts.MaxRetryAfter}).
					Warn("the platform asked for a longer pause than herald waits; waiting the maximum instead")
				ra = d.opts.MaxRetryAfter
			}
			if ra > delay {
				delay = ra
			}
		}
		dl.nextAt = time.Now().Add(delay)
		log.WithError(err).WithFields(logrus.Fields{"attempts": dl.attempts, "retry_in": delay.Round(time.Millisecond)}).Info("reply delivery failed; will retry")
		if serr := d.store.Retry(bg, dl.rec.ID, dl.attempts, dl.nextAt, err.Error()); serr != nil {
			log.WithError(serr).Error("cannot record a delivery retry")
		}
		d.metrics.DeliveryRetry(msg.Platform)
	}
}

func (d *Dispatcher) giveUp(dl *delivery, reason string) {
	d.sendOutcome(dl, "failed")
	if err := d.store.GiveUp(d.bg(), dl.rec.ID, dl.attempts, reason); err != nil {
		d.log.WithError(err).Error("cannot record a failed reply")
	}
}

// editStreamer shows a growing reply by editing one message while the agent
// streams, on platforms with adapter.Editor. It is best-effort: failures
// only stop the streaming view; the final reply always goes through the
// outbox (as an edit of the streamed message when there is one).
type editStreamer struct {
	d       *Dispatcher
	p       *platform
	it      *item
	ctx     context.Context
	text    []byte
	msgID   string
	last    time.Time
	broken  bool
	current string
}

func (e *editStreamer) delta(s string) {
	e.text = append(e.text, s...)
	if e.broken || time.Since(e.last) < e.d.opts.StreamEditInterval {
		return
	}
	e.last = time.Now()
	show := string(e.text)
	if parts := Split(show, e.p.limit-2); len(parts) > 0 {
		show = parts[0]
	}
	show += " ▍"
	if show == e.current {
		return
	}
	out := e.it.msg.ReplyTo()
	out.Text = show
	out.IdempotencyKey = message.IdempotencyKey(e.it.msg.Platform, e.it.msg.EventID, 0)
	ctx, cancel := context.WithTimeout(e.ctx, e.d.opts.DeliveryTimeout)
	defer cancel()
	if e.msgID == "" {
		res, err := e.p.Adapter.Send(ctx, &out)
		if err != nil || res.MessageID == "" {
			e.broken = true
			return
		}
		e.msgID = res.MessageID
	} else if err := e.p.editor.Edit(ctx, &out, e.msgID); err != nil {
		e.broken = true
		return
	}
	e.current = show
}

// done marks the streamed message so that the final first part replaces it.
func (e *editStreamer) done(string) {
	if e.msgID == "" {
		return
	}
	if e.it.msg.Meta == nil {
		e.it.msg.Meta = map[string]string{}
	}
	e.it.msg.Meta[metaEditID] = e.msgID
}
