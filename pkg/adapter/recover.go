// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/message"
)

// Values of the interrupted_send setting of a platform that can neither
// deduplicate a send nor find the message an interrupted send created
// (Telegram, Signal): what becomes of a reply whose send may or may not
// have reached the user.
const (
	// ResendMarked sends it again, prefixed with RecoveredMark: nothing is
	// lost, and a repeat is labelled as one.
	ResendMarked = "resend_marked"
	// AtMostOnce does not send it again: it is lost if the interrupted
	// send had not reached the platform.
	AtMostOnce = "at_most_once"
	// RecoveredMark is the line a marked resend starts with.
	RecoveredMark = "(recovered reply, may repeat)"
)

// RecoverByPolicy implements Recoverer.Recover for such a platform. With
// AtMostOnce it declines (ErrNotResent); with ResendMarked it sends msg
// again with send, its text starting with RecoveredMark, under its own
// idempotency key. A marked resend whose own outcome is unknown is not sent
// a third time (ErrNotResent). what names the call in errors and logs
// ("telegram: sendMessage").
func RecoverByPolicy(ctx context.Context, policy, what string, msg *message.Outbound, since time.Time, log *logrus.Entry,
	send func(context.Context, *message.Outbound) (SendResult, error)) (SendResult, error) {
	if policy == AtMostOnce {
		return SendResult{}, fmt.Errorf("%s: %w (interrupted_send: %s, first attempt at %s)",
			what, ErrNotResent, AtMostOnce, since.UTC().Format(time.RFC3339))
	}
	marked := *msg
	marked.Text = RecoveredMark + "\n" + msg.Text
	// Its own key: pieces of a long part that an earlier attempt in this
	// process showed belong to the unmarked text.
	marked.IdempotencyKey = msg.IdempotencyKey + "/recovered"
	res, err := send(ctx, &marked)
	if errors.Is(err, ErrAmbiguous) {
		return res, fmt.Errorf("%s: %w: the marked resend's outcome is unknown too: %v", what, ErrNotResent, err)
	}
	if err == nil {
		log.WithField("message_id", res.MessageID).Warn(what + ": sent again, marked, a reply whose earlier send was interrupted; the user may see it twice")
	}
	return res, err
}
