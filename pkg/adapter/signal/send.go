// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// maxAnswer bounds one JSON-RPC answer.
const maxAnswer = 1 << 20

// JSON-RPC error codes signal-cli answers with, besides the standard ones
// (-32700 … -32603).
const (
	codeUserError     = -1 // unregistered recipient, unknown group, not a member
	codeIOError       = -3
	codeUntrustedKey  = -4
	codeRateLimit     = -5
	codeParseError    = -32700
	codeInvalidParams = -32602
)

type rpcRequest struct {
	JSONRPC string         `json:"jsonrpc"`
	Method  string         `json:"method"`
	Params  map[string]any `json:"params,omitempty"`
	ID      string         `json:"id"`
}

type rpcResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// sendResult is the result of send: the timestamp of the message sent and
// one entry per recipient device set (for a group, per member).
type sendResult struct {
	Timestamp int64             `json:"timestamp"`
	Results   []recipientResult `json:"results"`
}

type recipientResult struct {
	Type              string `json:"type"`
	Token             string `json:"token"`
	RetryAfterSeconds *int64 `json:"retryAfterSeconds"`
}

var rpcSeq atomic.Uint64

// Send delivers one reply part with the JSON-RPC method send (a part with
// Media as an attachment: sendMedia): to
// params.groupId for a ChatID starting with GroupPrefix, else to
// params.recipient. In a group it quotes the message answered (ReplyTo, by
// RecipientID). The text is sent as it is, without mention or text-style
// ranges: Signal mentions exist only as such ranges, so agent text cannot
// notify anyone who is not already the recipient.
//
// Errors: rate limits (code -5, RATE_LIMIT_FAILURE results) →
// ErrRateLimited, with retryAfterSeconds as *adapter.RetryAfterError; an
// unregistered recipient, unknown group, untrusted identity, bad params →
// ErrPermanent; the daemon not answering → ErrTemporary; a failure after
// the request was written → ErrAmbiguous: Signal has no idempotency key.
func (a *Adapter) Send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	ctx, end, err := a.life.Begin(ctx)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("signal: send: %w: %w", adapter.ErrTemporary, err)
	}
	defer end()
	if msg.Media != nil {
		return a.sendMedia(ctx, msg)
	}
	if strings.TrimSpace(msg.Text) == "" {
		return adapter.SendResult{}, fmt.Errorf("signal: send: %w: empty text", adapter.ErrPermanent)
	}
	params, err := a.sendParams(msg, msg.Text)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("signal: send: %w", err)
	}
	var res sendResult
	if err := a.call(ctx, "send", params, &res); err != nil {
		return adapter.SendResult{}, fmt.Errorf("signal: send: %w", err)
	}
	if err := a.outcome(res); err != nil {
		return adapter.SendResult{}, fmt.Errorf("signal: send: %w", err)
	}
	return adapter.SendResult{MessageID: strconv.FormatInt(res.Timestamp, 10)}, nil
}

// sendParams builds send's params for msg with text as the message
// (omitted when empty: a file alone).
func (a *Adapter) sendParams(msg *message.Outbound, text string) (map[string]any, error) {
	p := map[string]any{}
	if text != "" {
		p["message"] = text
	}
	if a.conf.Account != "" {
		p["account"] = a.conf.Account
	}
	switch g, isGroup := strings.CutPrefix(msg.ChatID, GroupPrefix); {
	case isGroup && g != "":
		p["groupId"] = g
		if ts, err := strconv.ParseInt(msg.ReplyTo, 10, 64); err == nil && ts > 0 && msg.RecipientID != "" {
			p["quoteTimestamp"] = ts
			p["quoteAuthor"] = msg.RecipientID
		}
	case !isGroup && msg.ChatID != "" && !strings.ContainsAny(msg.ChatID, " \t\r\n"):
		p["recipient"] = []string{msg.ChatID}
	default:
		return nil, fmt.Errorf("%w: chat id %q is neither a recipient nor %s<group id>", adapter.ErrPermanent, msg.ChatID, GroupPrefix)
	}
	return p, nil
}

// call makes one JSON-RPC request to POST /api/v1/rpc, bounded by
// request_timeout, and decodes its result into out. Errors wrap the
// adapter's sentinels.
func (a *Adapter) call(ctx context.Context, method string, params map[string]any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	body, err := json.Marshal(newRequest(method, params))
	if err != nil {
		return fmt.Errorf("%w: %v", adapter.ErrPermanent, err)
	}
	resp, err := a.post(ctx, method, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%w: %s: reading the answer: %v", adapter.ErrAmbiguous, method, err)
	}
	return decodeAnswer(method, raw, out)
}

func newRequest(method string, params map[string]any) rpcRequest {
	return rpcRequest{JSONRPC: "2.0", Method: method, Params: params,
		ID: "herald-" + strconv.FormatUint(rpcSeq.Add(1), 10)}
}

// decodeAnswer decodes a JSON-RPC answer's result into out, or classifies
// its error.
func decodeAnswer(method string, raw []byte, out any) error {
	var r rpcResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("%w: %s: answer is not JSON-RPC: %v", adapter.ErrAmbiguous, method, err)
	}
	if r.Error != nil {
		return classifyRPC(method, r.Error)
	}
	if err := json.Unmarshal(r.Result, out); err != nil {
		return fmt.Errorf("%w: %s: unexpected result: %v", adapter.ErrAmbiguous, method, err)
	}
	return nil
}

// post sends one JSON-RPC request body of length bytes to POST
// /api/v1/rpc and returns the 200 answer, whose body the caller reads and
// closes. A failure after the request was written is ErrAmbiguous.
func (a *Adapter) post(ctx context.Context, method string, body io.Reader, length int64) (*http.Response, error) {
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.conf.baseURL()+"/api/v1/rpc", body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", adapter.ErrPermanent, err)
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", "application/json")
	// A call that ends after Stop must not leave a keep-alive connection
	// (and its goroutines) behind.
	defer func() {
		if a.life.Stopping() {
			a.tr.CloseIdleConnections()
		}
	}()
	resp, err := a.http.Do(req)
	if err != nil {
		if wrote.Load() {
			return nil, fmt.Errorf("%w: %s: %v", adapter.ErrAmbiguous, method, err)
		}
		return nil, fmt.Errorf("%w: %s: daemon not answering: %v", adapter.ErrTemporary, method, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return resp, nil
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %w: %s: HTTP 413", adapter.ErrPermanent, adapter.ErrTooLarge, method)
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		// 404/405/415: not signal-cli's endpoint or a request it cannot read.
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s: HTTP %d", adapter.ErrPermanent, method, resp.StatusCode)
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s: HTTP %d", adapter.ErrAmbiguous, method, resp.StatusCode)
	}
}

// classifyRPC maps a JSON-RPC error of signal-cli to the sentinels.
func classifyRPC(method string, e *rpcError) error {
	desc := fmt.Sprintf("%s: signal-cli error %d: %s", method, e.Code, e.Message)
	low := strings.ToLower(e.Message)
	switch {
	case e.Code == codeRateLimit || strings.Contains(low, "rate limit") || strings.Contains(low, "proof required"):
		return fmt.Errorf("%w: %s", adapter.ErrRateLimited, desc)
	case e.Code == codeUntrustedKey:
		return fmt.Errorf("%w: %s (the recipient's safety number changed: signal-cli trust)", adapter.ErrPermanent, desc)
	case e.Code == codeUserError, e.Code == codeParseError, e.Code <= -32600 && e.Code >= codeInvalidParams:
		return fmt.Errorf("%w: %s", adapter.ErrPermanent, desc)
	default:
		// codeIOError, internal errors: the daemon may have sent to some
		// recipients before failing.
		return fmt.Errorf("%w: %s", adapter.ErrAmbiguous, desc)
	}
}

// outcome classifies send's per-recipient results. A message that reached
// one recipient is sent: sending it again would repeat it there. When none
// was reached, rate limits come first (RATE_LIMIT_FAILURE, with
// retryAfterSeconds when Signal demands a proof), then network failures
// (temporary: nothing was delivered), then the rest (permanent).
func (a *Adapter) outcome(res sendResult) error {
	var limited, network, other int
	var wait time.Duration
	var token string
	for _, r := range res.Results {
		switch r.Type {
		case "SUCCESS":
			if len(res.Results) > 1 {
				a.logPartial(res)
			}
			return nil
		case "RATE_LIMIT_FAILURE":
			limited++
			if r.Token != "" {
				token = r.Token
			}
			if r.RetryAfterSeconds != nil {
				d, clamped := adapter.BoundWait(float64(*r.RetryAfterSeconds), time.Second, time.Second, adapter.MaxRetryAfter)
				if clamped {
					adapter.LogClamp(a.log, "signal: retryAfterSeconds of send", *r.RetryAfterSeconds, d)
				}
				wait = max(wait, d)
			}
		case "NETWORK_FAILURE":
			network++
		default:
			other++
		}
	}
	switch {
	case len(res.Results) == 0:
		return nil
	case limited > 0:
		err := fmt.Errorf("%w: %d of %d recipients rate limited", adapter.ErrRateLimited, limited, len(res.Results))
		if token != "" {
			a.log.Error("signal: Signal demands a proof (captcha) before more messages can be sent; solve it and run signal-cli submitRateLimitChallenge, or wait")
		}
		if wait > 0 {
			return &adapter.RetryAfterError{After: wait, Err: err}
		}
		return err
	case network > 0:
		return fmt.Errorf("%w: network failure towards %d recipients", adapter.ErrTemporary, network)
	default:
		return fmt.Errorf("%w: %s", adapter.ErrPermanent, res.Results[0].Type)
	}
}

func (a *Adapter) logPartial(res sendResult) {
	failed := map[string]int{}
	for _, r := range res.Results {
		if r.Type != "SUCCESS" {
			failed[r.Type]++
		}
	}
	if len(failed) > 0 {
		a.log.WithFields(logrus.Fields{"timestamp": res.Timestamp, "failed": failed}).Warn("signal: message sent, but not to every group member")
	}
}

// Recover implements adapter.Recoverer for a reply whose send may or may
// not have reached Signal. Neither Signal nor signal-cli can tell, so
// interrupted_send decides (adapter.RecoverByPolicy): at_most_once declines,
// resend_marked sends it again once, marked.
func (a *Adapter) Recover(ctx context.Context, msg *message.Outbound, since time.Time) (adapter.SendResult, error) {
	return adapter.RecoverByPolicy(ctx, a.conf.InterruptedSend, "signal: send", msg, since, a.log, a.Send)
}
