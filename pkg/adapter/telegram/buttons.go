// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// Buttons are an inline keyboard (reply_markup InlineKeyboardMarkup on
// sendMessage: inline_keyboard, rows of InlineKeyboardButton with text and
// callback_data of 1 to 64 bytes), one row. A press arrives as a
// callback_query update (id, from, message, data), which needs
// callback_query in allowed_updates; the client shows a progress
// indicator until the bot calls answerCallbackQuery with the query's id.

type inlineKeyboard struct {
	InlineKeyboard [][]inlineButton `json:"inline_keyboard"`
}

type inlineButton struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data"`
}

// keyboard returns the inline keyboard of buttons, nil for none.
func keyboard(buttons []message.Button) *inlineKeyboard {
	if len(buttons) == 0 {
		return nil
	}
	row := make([]inlineButton, len(buttons))
	for i, b := range buttons {
		row[i] = inlineButton{Text: b.Label, CallbackData: b.Data}
	}
	return &inlineKeyboard{InlineKeyboard: [][]inlineButton{row}}
}

// SendsButtons implements adapter.ButtonSender: buttons are shown when
// presses can come back, that is when allowed_updates has callback_query.
func (a *Adapter) SendsButtons() bool {
	return slices.Contains(a.conf.AllowedUpdates, "callback_query")
}

// callbackQuery is the subset of a CallbackQuery herald reads. Message is
// the message carrying the button; when it is too old to be accessible
// Telegram still sends its chat and message_id (date 0).
type callbackQuery struct {
	ID      string     `json:"id"`
	From    *user      `json:"from"`
	Message *tgMessage `json:"message"`
	Data    string     `json:"data"`
}

// pressed maps a callback query to the press it stands for: the sender's
// button data in the chat of the message carrying the button, under the
// query's id. Nothing about mentions applies: pressing a bot's button is
// addressed to the bot.
func (f *filter) pressed(q *callbackQuery, now time.Time) (msg *message.Inbound, reason, detail string) {
	switch {
	case q.Data == "":
		return nil, reasonUnsupported, "callback query without data (a game or an inline message)"
	case q.Message == nil:
		return nil, reasonUnsupported, "callback query without a message"
	case q.From != nil && q.From.IsBot:
		return nil, reasonFromBot, "pressed by a bot"
	}
	m := q.Message
	msg = &message.Inbound{
		Platform:   f.platform,
		EventID:    "cq:" + q.ID,
		ChatID:     strconv.FormatInt(m.Chat.ID, 10),
		ChatType:   chatType(m.Chat.Type),
		MessageID:  strconv.FormatInt(m.MessageID, 10),
		Button:     q.Data,
		ReceivedAt: now,
	}
	if q.ID == "" {
		msg.EventID = ""
	}
	if m.IsTopicMessage && m.MessageThreadID != 0 {
		msg.ThreadID = strconv.FormatInt(m.MessageThreadID, 10)
	}
	if q.From != nil && q.From.ID != 0 {
		msg.SenderID = strconv.FormatInt(q.From.ID, 10)
		msg.SenderName = displayName(q.From)
	}
	if m.Chat.ID == 0 {
		msg.ChatID = ""
	}
	if err := msg.Validate(); err != nil {
		return nil, reasonInvalid, err.Error()
	}
	return msg, "", ""
}

// maxAnswerWait bounds answerCallbackQuery: the poll loop waits for it.
const maxAnswerWait = 5 * time.Second

// answerCallback stops the client's progress indicator on the pressed
// button. It is called for every callback query herald has done with,
// whatever became of the press (stored, a duplicate, refused, unreadable),
// so a stale button does not spin. A failure is logged only: the query
// may be too old to answer, and the press is stored regardless.
func (p *poller) answerCallback(ctx context.Context, id string) {
	if id == "" {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, min(p.a.conf.RequestTimeout, maxAnswerWait))
	defer cancel()
	params := struct {
		CallbackQueryID string `json:"callback_query_id"`
	}{id}
	if err := p.a.api.call(cctx, "answerCallbackQuery", params, nil); err != nil {
		p.log().WithError(err).WithField("callback_query_id", id).Info("telegram: answerCallbackQuery failed; the button shows progress until the client gives up")
		return
	}
	p.log().WithField("callback_query_id", id).Debug("telegram: callback query answered")
}
