// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Recover implements adapter.Recoverer for a reply whose sendMessage may or
// may not have reached Telegram. The Bot API has no idempotency key and no
// way to read a chat's history, so nothing can be looked up: with
// interrupted_send: at_most_once it declines (ErrNotResent); with
// resend_marked it sends the reply again, starting with RecoveredMark. A
// marked resend whose own outcome is unknown is not sent a third time.
func (a *Adapter) Recover(ctx context.Context, msg *message.Outbound, since time.Time) (adapter.SendResult, error) {
	if a.conf.InterruptedSend == AtMostOnce {
		return adapter.SendResult{}, fmt.Errorf("telegram: sendMessage: %w (interrupted_send: %s, first attempt at %s)",
			adapter.ErrNotResent, AtMostOnce, since.UTC().Format(time.RFC3339))
	}
	marked := *msg
	marked.Text = RecoveredMark + "\n" + msg.Text
	// Its own key: pieces of a long part that an earlier attempt in this
	// process showed belong to the unmarked text.
	marked.IdempotencyKey = msg.IdempotencyKey + "/recovered"
	res, err := a.Send(ctx, &marked)
	if errors.Is(err, adapter.ErrAmbiguous) {
		return res, fmt.Errorf("telegram: %w: the marked resend's outcome is unknown too: %v", adapter.ErrNotResent, err)
	}
	if err == nil {
		a.log.WithField("message_id", res.MessageID).Warn("telegram: sent again, marked, a reply whose earlier send was interrupted; the user may see it twice")
	}
	return res, err
}

var _ adapter.Recoverer = (*Adapter)(nil)
