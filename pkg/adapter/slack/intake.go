// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/coder/websocket"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/message"
)

// intakeItem is an envelope waiting for the store, with the connection to
// acknowledge it on.
type intakeItem struct {
	c   *conn
	env envelope
}

// work stores envelopes one at a time, in the order they were read, and
// acknowledges each after the store accepted it.
func (a *Adapter) work() {
	for {
		select {
		case <-a.intakeCtx.Done():
			return
		case it := <-a.intake:
			a.handle(a.intakeCtx, it)
		}
	}
}

func (a *Adapter) handle(ctx context.Context, it intakeItem) {
	if ctx.Err() != nil {
		return // stopping: Slack redelivers
	}
	env := it.env
	log := it.c.log.WithFields(logrus.Fields{"envelope_id": env.EnvelopeID, "type": env.Type})
	if env.RetryAttempt > 0 {
		log = log.WithFields(logrus.Fields{"retry_attempt": env.RetryAttempt, "retry_reason": env.RetryReason})
	}
	msg, skip, err := a.mapper.inbound(env, time.Now())
	switch {
	case err != nil:
		a.Metrics.Rejected("malformed")
		log.WithError(err).Warn("slack: acknowledging an envelope herald cannot read")
	case msg == nil:
		log.Debugf("slack: acknowledging without storing: %s", skip)
	default:
		log = log.WithField("event_id", msg.EventID)
		if verr := msg.Validate(); verr != nil {
			reason := "malformed"
			if len(msg.Text) > message.MaxTextBytes {
				reason = "too_large"
			}
			a.Metrics.Rejected(reason)
			log.WithError(verr).Warn("slack: acknowledging an event that cannot be stored")
			break
		}
		dctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
		err := a.inbox.Deliver(dctx, msg)
		cancel()
		if err != nil {
			if errors.Is(err, message.ErrInvalid) {
				a.Metrics.Rejected("malformed")
				log.WithError(err).Warn("slack: store refused the event; acknowledging so Slack stops redelivering it")
				break
			}
			if ctx.Err() == nil {
				log.WithError(err).Warn("slack: event not stored and not acknowledged; Slack will redeliver it")
			}
			return
		}
	}
	a.ack(it.c, env.EnvelopeID, log)
}

// ack acknowledges an envelope on the connection it came from. A failed
// ack is harmless: Slack redelivers and the store deduplicates.
func (a *Adapter) ack(c *conn, id string, log *logrus.Entry) {
	b, err := json.Marshal(struct {
		EnvelopeID string `json:"envelope_id"`
	}{id})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, a.conf.RequestTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		log.WithError(err).Debug("slack: acknowledgement not sent; Slack will redeliver")
	}
}
