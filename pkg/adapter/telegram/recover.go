// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
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
	return adapter.RecoverByPolicy(ctx, a.conf.InterruptedSend, "telegram: sendMessage", msg, since, a.Log, a.Send)
}

var _ adapter.Recoverer = (*Adapter)(nil)
