// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Send delivers one reply part with a file as an uploaded image or file
// (see sendMedia), and any other as a plain text message: through the
// message's session webhook while it is valid (at.isAtAll false), else
// through the robot API (oToMessages/batchSend for a 1:1 chat,
// groupMessages/send for a group, msgKey sampleText).
//
// Errors: frequency limits → *adapter.RetryAfterError (ErrRateLimited);
// rejected credentials → ErrUnauthorized; other 4xx answers → ErrPermanent;
// 5xx and failures before the request was written → ErrTemporary; a failure
// after it was written → ErrAmbiguous (DingTalk has no idempotency key).
func (a *Adapter) Send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	ctx, end, err := a.life.Begin(ctx)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("dingtalk: send: %w: %w", adapter.ErrTemporary, err)
	}
	defer end()
	if msg.Media != nil {
		return a.sendMedia(ctx, msg)
	}
	if strings.TrimSpace(msg.Text) == "" {
		return adapter.SendResult{}, fmt.Errorf("dingtalk: send: %w: empty text", adapter.ErrPermanent)
	}
	return a.sendText(ctx, msg, msg.Text)
}

// sendText sends text through the session webhook while it is valid, else
// through the robot API.
func (a *Adapter) sendText(ctx context.Context, msg *message.Outbound, text string) (adapter.SendResult, error) {
	text = Neutralize(text)
	if hook, ok := a.sessionWebhook(msg); ok {
		err := a.sendWebhook(ctx, hook, text)
		var ae *apiError
		if err == nil || !errors.As(err, &ae) || ae.limited() {
			return adapter.SendResult{}, classify("session webhook", err)
		}
		// DingTalk refused the webhook (expired, revoked): nothing was
		// shown, so the robot API may send it.
		a.log.WithError(err).Info("dingtalk: session webhook refused; replying through the robot API")
	}
	return a.sendRobot(ctx, msg, "sampleText", textBody{text})
}

// sessionWebhook returns the message's session webhook if it is valid for
// webhookMargin more.
func (a *Adapter) sessionWebhook(msg *message.Outbound) (string, bool) {
	hook := msg.Meta[MetaSessionWebhook]
	if hook == "" {
		return "", false
	}
	u, err := url.Parse(hook)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		a.log.Warn("dingtalk: session webhook is not an http(s) URL; using the robot API")
		return "", false
	}
	ms, err := strconv.ParseInt(msg.Meta[MetaSessionWebhookExpires], 10, 64)
	if err != nil || !a.now().Add(webhookMargin).Before(time.UnixMilli(ms)) {
		return "", false
	}
	return hook, true
}

type textBody struct {
	Content string `json:"content"`
}

type atBody struct {
	IsAtAll bool `json:"isAtAll"`
}

func (a *Adapter) sendWebhook(ctx context.Context, hook, text string) error {
	body := struct {
		Msgtype string   `json:"msgtype"`
		Text    textBody `json:"text"`
		At      atBody   `json:"at"`
	}{"text", textBody{text}, atBody{false}}
	cctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	return a.api.post(cctx, hook, "", body, nil)
}

// robotSendAnswer is the answer of the robot send APIs. batchSend lists
// the users it did not send to.
type robotSendAnswer struct {
	ProcessQueryKey           string   `json:"processQueryKey"`
	InvalidStaffIDList        []string `json:"invalidStaffIdList"`
	FlowControlledStaffIDList []string `json:"flowControlledStaffIdList"`
}

// sendRobot sends one message of the template msgKey with its parameters
// through the robot API.
func (a *Adapter) sendRobot(ctx context.Context, msg *message.Outbound, msgKey string, msgParam any) (adapter.SendResult, error) {
	param, err := json.Marshal(msgParam)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("dingtalk: send: encode: %w", err)
	}
	robot := a.robotCode(msg.Meta)
	var path, op string
	var body any
	if msg.ChatType == message.ChatDirect {
		user := msg.Meta[MetaStaffID]
		if user == "" {
			user = msg.RecipientID
		}
		if user == "" {
			return adapter.SendResult{}, fmt.Errorf("dingtalk: oToMessages/batchSend: %w: no staff id to send to", adapter.ErrPermanent)
		}
		path, op = pathBatchSend, "oToMessages/batchSend"
		body = struct {
			RobotCode string   `json:"robotCode"`
			UserIDs   []string `json:"userIds"`
			MsgKey    string   `json:"msgKey"`
			MsgParam  string   `json:"msgParam"`
		}{robot, []string{user}, msgKey, string(param)}
	} else {
		if msg.ChatID == "" {
			return adapter.SendResult{}, fmt.Errorf("dingtalk: groupMessages/send: %w: no conversation id", adapter.ErrPermanent)
		}
		path, op = pathGroupSend, "groupMessages/send"
		body = struct {
			RobotCode          string `json:"robotCode"`
			OpenConversationID string `json:"openConversationId"`
			MsgKey             string `json:"msgKey"`
			MsgParam           string `json:"msgParam"`
		}{robot, msg.ChatID, msgKey, string(param)}
	}
	var out robotSendAnswer
	if err := a.withToken(ctx, a.conf.RequestTimeout, func(ctx context.Context, tok string) error {
		return a.api.post(ctx, a.api.base+path, tok, body, &out)
	}); err != nil {
		return adapter.SendResult{}, classify(op, err)
	}
	switch {
	case len(out.FlowControlledStaffIDList) > 0:
		return adapter.SendResult{}, classify(op, &apiError{Status: 200, Code: "QpsLimit", Message: "recipient flow-controlled"})
	case len(out.InvalidStaffIDList) > 0:
		return adapter.SendResult{}, fmt.Errorf("dingtalk: %s: %w: invalid staff id", op, adapter.ErrPermanent)
	}
	return adapter.SendResult{MessageID: out.ProcessQueryKey}, nil
}

// robotCode is robot_code, else the message's robotCode, else client_id.
func (a *Adapter) robotCode(meta map[string]string) string {
	switch {
	case a.conf.RobotCode != "":
		return a.conf.RobotCode
	case meta[MetaRobotCode] != "":
		return meta[MetaRobotCode]
	}
	return a.conf.ClientID
}

// withToken calls call with the app access token, each try bounded by
// timeout. A token DingTalk rejects before its time (the rejected request
// did nothing) is dropped and fetched again, once.
func (a *Adapter) withToken(ctx context.Context, timeout time.Duration, call func(ctx context.Context, tok string) error) error {
	for try := 0; ; try++ {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		tok, err := a.api.accessToken(cctx)
		if err == nil {
			err = call(cctx, tok)
		}
		cancel()
		var ae *apiError
		if err != nil && try == 0 && tok != "" && errors.As(err, &ae) && ae.unauthorized() {
			a.api.dropToken(tok)
			a.log.WithError(err).Info("dingtalk: access token rejected; fetching a new one")
			continue
		}
		return err
	}
}

// limitDelay is the wait after a frequency limit that came without a
// Retry-After.
const limitDelay = 2 * time.Second

// classify maps a failed call to the adapter sentinels.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var ae *apiError
	var te *transportError
	switch {
	case errors.As(err, &ae):
		switch {
		case ae.limited():
			after := ae.RetryAfter
			if after <= 0 {
				after = limitDelay
			}
			return fmt.Errorf("dingtalk: %s: %w", op,
				&adapter.RetryAfterError{After: after, Err: fmt.Errorf("%w: %v", adapter.ErrRateLimited, ae)})
		case ae.unauthorized():
			return fmt.Errorf("dingtalk: %s: %w: %v", op, adapter.ErrUnauthorized, ae)
		case ae.Status >= 500:
			return fmt.Errorf("dingtalk: %s: %w: %v", op, adapter.ErrTemporary, ae)
		default:
			return fmt.Errorf("dingtalk: %s: %w: %v", op, adapter.ErrPermanent, ae)
		}
	case errors.As(err, &te) && te.Written:
		return fmt.Errorf("dingtalk: %s: %w: %v (the request was sent; DingTalk may have shown it and has no idempotency key)",
			op, adapter.ErrAmbiguous, te)
	default:
		return fmt.Errorf("dingtalk: %s: %w: %w", op, adapter.ErrTemporary, err)
	}
}

var everyone = regexp.MustCompile(`(?i)@(all|everyone|所有人)`)

// Neutralize breaks the mentions that would notify a whole group ("@all",
// "@所有人") with a zero-width space after the @. DingTalk only notifies
// everyone when at.isAtAll is true, which herald never sets; this keeps a
// client from rendering the text as a group mention either.
func Neutralize(s string) string { return everyone.ReplaceAllString(s, "@\u200b$1") }
