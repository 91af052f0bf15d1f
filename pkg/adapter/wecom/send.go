// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// userIDRE is a WeCom userid: letters, digits, "_", "-", "." or "@", 1 to
// maxUserIDLen of them. "|" (which separates several recipients) is not among
// them. The length is checked apart (validID): a bounded repetition {1,64}
// compiles to 64 copies of the class, at every herald start.
var userIDRE = regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`)

// maxUserIDLen is the longest userid and corp id WeCom issues.
const maxUserIDLen = 64

// validID reports whether s is 1 to maxUserIDLen characters that re matches.
func validID(re *regexp.Regexp, s string) bool {
	return len(s) <= maxUserIDLen && re.MatchString(s)
}

// sendRequest is the body of POST /cgi-bin/message/send: a text, image,
// voice, video or file message.
type sendRequest struct {
	ToUser                 string       `json:"touser"`
	MsgType                string       `json:"msgtype"`
	AgentID                int64        `json:"agentid"`
	Text                   *textContent `json:"text,omitempty"`
	Image                  *mediaRef    `json:"image,omitempty"`
	Voice                  *mediaRef    `json:"voice,omitempty"`
	Video                  *mediaRef    `json:"video,omitempty"`
	File                   *mediaRef    `json:"file,omitempty"`
	Safe                   int          `json:"safe"`
	EnableIDTrans          int          `json:"enable_id_trans"`
	EnableDuplicateCheck   int          `json:"enable_duplicate_check"`
	DuplicateCheckInterval int          `json:"duplicate_check_interval,omitempty"`
}

type textContent struct {
	Content string `json:"content"`
}

// mediaRef is the content of a media message: an uploaded media_id (a
// video also has a title and a description).
type mediaRef struct {
	MediaID     string `json:"media_id"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
}

type sendResponse struct {
	InvalidUser string `json:"invaliduser"`
	MsgID       string `json:"msgid"`
}

// Send delivers one reply part as a text message from the application to
// msg.ChatID, the userid of the member who wrote, or a part with a file as
// an uploaded media message followed by its caption (see sendMedia).
// WeCom's application messages have no quoting, so msg.ReplyTo is not used.
//
// The recipient must be a single userid: "@all" (every member who can see
// the application) and "a|b" (several) are refused, so that no text from
// the agent can reach more people than the one it answers. The content is
// sent as it is: an application text message mentions nobody, and id
// translation ($userName=…$) stays off.
//
// Errors: 45009, 45011, 45033 (frequency limits) → *adapter.RetryAfterError;
// 40001, 40013, 40056, 40091, 48002, 60020 (credentials, agent id,
// trusted IP) → ErrUnauthorized (and the platform shows as failed);
// 42001 and 40014 renew the access token and retry once, then
// ErrTemporary; -1 and 5xx → ErrTemporary; other errcodes → ErrPermanent;
// a failure after the request was written → ErrAmbiguous.
func (a *Adapter) Send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	const what = "send message"
	ctx, end, err := a.Life.Begin(ctx)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("wecom: %s: %w: %w", what, adapter.ErrTemporary, err)
	}
	defer end()
	if !validID(userIDRE, msg.ChatID) || strings.EqualFold(msg.ChatID, "@all") {
		return adapter.SendResult{}, fmt.Errorf("wecom: %s: %w: chat id %q is not a single WeCom userid", what, adapter.ErrPermanent, msg.ChatID)
	}
	if msg.Media != nil {
		return a.sendMedia(ctx, msg)
	}
	if strings.TrimSpace(msg.Text) == "" {
		return adapter.SendResult{}, fmt.Errorf("wecom: %s: %w: empty text", what, adapter.ErrPermanent)
	}
	if n := len(msg.Text); n > MaxTextBytes {
		return adapter.SendResult{}, fmt.Errorf("wecom: %s: %w: text is %d bytes, WeCom's limit is %d", what, adapter.ErrPermanent, n, MaxTextBytes)
	}
	req := sendRequest{ToUser: msg.ChatID, MsgType: "text", AgentID: a.conf.AgentID}
	req.Text = &textContent{Content: msg.Text}
	return a.sendMessage(ctx, &req)
}

// sendMessage posts one message/send request.
func (a *Adapter) sendMessage(ctx context.Context, req *sendRequest) (adapter.SendResult, error) {
	const what = "send message"
	var out sendResponse
	if err := a.api.call(ctx, http.MethodPost, "/cgi-bin/message/send", req, &out); err != nil {
		err = classify(what, err, true)
		if errors.Is(err, adapter.ErrUnauthorized) {
			a.rejected(err)
		}
		return adapter.SendResult{}, err
	}
	if out.InvalidUser != "" {
		return adapter.SendResult{}, fmt.Errorf("wecom: %s: %w: WeCom names %q an invalid recipient", what, adapter.ErrPermanent, out.InvalidUser)
	}
	return adapter.SendResult{MessageID: out.MsgID}, nil
}
