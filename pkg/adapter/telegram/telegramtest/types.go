// SPDX-License-Identifier: Apache-2.0

package telegramtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// User is a Telegram user or bot as the Bot API serialises it.
type User struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name,omitempty"`
	Username  string `json:"username,omitempty"`
}

// Chat is a Telegram chat. Type is private, group, supergroup or channel.
type Chat struct {
	ID       int64  `json:"id"`
	Type     string `json:"type"`
	Title    string `json:"title,omitempty"`
	Username string `json:"username,omitempty"`
	IsForum  bool   `json:"is_forum,omitempty"`
}

// Entity is a MessageEntity. Offset and Length count UTF-16 code units.
type Entity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
	User   *User  `json:"user,omitempty"`
}

// Message is the subset of a Telegram Message herald reads.
type Message struct {
	MessageID       int64     `json:"message_id"`
	MessageThreadID int64     `json:"message_thread_id,omitempty"`
	IsTopicMessage  bool      `json:"is_topic_message,omitempty"`
	From            *User     `json:"from,omitempty"`
	SenderChat      *Chat     `json:"sender_chat,omitempty"`
	Chat            Chat      `json:"chat"`
	Date            int64     `json:"date"`
	Text            string    `json:"text,omitempty"`
	Entities        []Entity  `json:"entities,omitempty"`
	ReplyToMessage  *Message  `json:"reply_to_message,omitempty"`
	Photo           []PhotoSz `json:"photo,omitempty"`
}

// PhotoSz is a PhotoSize, enough to build a message without text.
type PhotoSz struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
}

// Update is one entry of a getUpdates answer. Leave UpdateID zero to have
// Push assign the next one.
type Update struct {
	UpdateID      int64    `json:"update_id"`
	Message       *Message `json:"message,omitempty"`
	EditedMessage *Message `json:"edited_message,omitempty"`
	ChannelPost   *Message `json:"channel_post,omitempty"`
	// CallbackQuery is kept raw: the fake only needs to produce one.
	CallbackQuery json.RawMessage `json:"callback_query,omitempty"`
}

// Reply is a scripted answer to one request.
type Reply struct {
	// Status and Body are the HTTP answer.
	Status int
	Body   string
	// Blackhole accepts the request and never answers; the handler ends
	// when the client goes away or the server closes.
	Blackhole bool
	// Abort closes the connection without an answer (hijack + close),
	// after the whole request was read.
	Abort bool
	// Hold carries the request out (sendMessage creates the message, which
	// Sent and Transcript show) and then, like Blackhole, never answers:
	// the client cannot know the message exists.
	Hold bool
}

// Error is a Bot API error answer with the given code and description.
func Error(code int, description string) Reply {
	b, _ := json.Marshal(map[string]any{"ok": false, "error_code": code, "description": description})
	return Reply{Status: code, Body: string(b)}
}

// RetryAfter is Telegram's 429 answer asking to wait seconds.
func RetryAfter(seconds int) Reply {
	b, _ := json.Marshal(map[string]any{
		"ok": false, "error_code": 429,
		"description": "Too Many Requests: retry after " + strconv.Itoa(seconds),
		"parameters":  map[string]any{"retry_after": seconds},
	})
	return Reply{Status: 429, Body: string(b)}
}

// Descriptions Telegram uses, for scripts and assertions.
const (
	ConflictPoller  = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
	ConflictWebhook = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
	MessageTooLong  = "Bad Request: message is too long"
	TextEmpty       = "Bad Request: message text is empty"
	NotModified     = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"
)

// Conflict is the 409 a poll gets when another getUpdates request replaced it.
func Conflict() Reply { return Error(409, ConflictPoller) }

// WebhookConflict is the 409 getUpdates gets while a webhook is set.
func WebhookConflict() Reply { return Error(409, ConflictWebhook) }

// TooLong is sendMessage's answer to a text above 4096 UTF-16 code units.
func TooLong() Reply { return Error(400, MessageTooLong) }

// ChatNotFound is the answer for an unknown chat_id.
func ChatNotFound() Reply { return Error(400, "Bad Request: chat not found") }

// Blocked is the answer when the user blocked the bot.
func Blocked() Reply { return Error(403, "Forbidden: bot was blocked by the user") }

// Unauthorized is the answer for a revoked token.
func Unauthorized() Reply { return Error(401, "Unauthorized") }

// NotFound is the answer for a malformed token or an unknown method.
func NotFound() Reply { return Error(404, "Not Found") }

// ServerError is a 502 as Telegram's front end sends it now and then.
func ServerError() Reply { return Error(502, "Bad Gateway") }

// Pass lets a call through to normal service; use it in Script to fail a
// later call of a series (Script("sendMessage", Pass(), ServerError())).
func Pass() Reply { return Reply{} }

// Blackhole accepts and never answers.
func Blackhole() Reply { return Fault(fakeserver.Blackhole()) }

// Hold creates the message and never answers.
func Hold() Reply { return Reply{Hold: true} }

// Abort closes the connection without answering.
func Abort() Reply { return Fault(fakeserver.Drop()) }

// Fault is the Bot API's form of a fault of the fakes' shared vocabulary:
// Blackhole, Drop (Abort), RateLimit (a 429 with parameters.retry_after, in
// whole seconds) and Reject(status) (an error answer whose description is
// the fault's Code, else the status text). A fault's N does not apply here:
// a script holds one Reply per request.
func Fault(f fakeserver.Fault) Reply {
	switch f.Kind {
	case fakeserver.KindBlackhole:
		return Reply{Blackhole: true}
	case fakeserver.KindDrop:
		return Reply{Abort: true}
	case fakeserver.KindRateLimit:
		return RetryAfter(int(f.RetryAfter / time.Second))
	}
	desc := f.Code
	if desc == "" {
		desc = http.StatusText(f.Status)
	}
	return Error(f.Status, desc)
}

// Request is one recorded API call.
type Request struct {
	Method string
	Params Params
	// Encoding is how the parameters came: json, form, multipart or query.
	Encoding string
	At       time.Time
}

// Params holds request parameters: string values as they are, other JSON
// values (numbers, objects, booleans) as their JSON text, which is also how
// form and multipart bodies carry objects.
type Params map[string]string

// Has reports whether name was sent.
func (p Params) Has(name string) bool { _, ok := p[name]; return ok }

// Get returns the parameter, "" if absent.
func (p Params) Get(name string) string { return p[name] }

// Int returns the parameter as an integer, 0 if absent or not a number.
func (p Params) Int(name string) int64 {
	i, err := strconv.ParseInt(p[name], 10, 64)
	if err != nil {
		return 0
	}
	return i
}

// Decode unmarshals a JSON-valued parameter (reply_parameters,
// allowed_updates) into v.
func (p Params) Decode(name string, v any) error {
	s, ok := p[name]
	if !ok {
		return fmt.Errorf("parameter %s absent", name)
	}
	return json.Unmarshal([]byte(s), v)
}

// SentMessage is a message the bot sent, as the user sees it now.
type SentMessage struct {
	MessageID int64
	ChatID    string
	Text      string
	// ReplyTo is reply_parameters.message_id (or reply_to_message_id).
	ReplyTo                  int64
	AllowSendingWithoutReply bool
	ThreadID                 int64
	// Edits counts editMessageText calls that changed the text.
	Edits int
	// Buttons are the inline keyboard's buttons, row after row.
	Buttons []InlineButton
}

// InlineButton is an InlineKeyboardButton with callback data.
type InlineButton struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data"`
}

// MaxCallbackData is Telegram's limit on callback_data, in bytes.
const MaxCallbackData = 64
