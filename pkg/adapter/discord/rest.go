// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// userAgent follows Discord's required form "DiscordBot ($url, $version)".
const userAgent = "DiscordBot (https://github.com/heraldgw/herald, 1)"

// maxResponse bounds what is read of a REST response body.
const maxResponse = 1 << 20

// Route templates, the keys of rate-limit buckets.
const (
	routeGatewayBot    = "GET /gateway/bot"
	routeCreateMessage = "POST /channels/{channel}/messages"
	routeEditMessage   = "PATCH /channels/{channel}/messages/{message}"
	routeTyping        = "POST /channels/{channel}/typing"
	// routeInteractionCallback is one bucket for all interactions (no
	// major parameter), so that the bucket table does not grow per press.
	routeInteractionCallback = "POST /interactions/{interaction}/{token}/callback"
)

type restClient struct {
	base    string
	token   secret.Value
	timeout time.Duration
	hc      *http.Client
	tr      *http.Transport
	lim     *buckets
	log     *logrus.Entry
}

func newRESTClient(base string, token secret.Value, timeout time.Duration, log *logrus.Entry) *restClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	lim := newBuckets()
	lim.log = log
	return &restClient{
		base:    strings.TrimRight(base, "/"),
		token:   token,
		timeout: timeout,
		hc:      &http.Client{Transport: tr},
		tr:      tr,
		lim:     lim,
		log:     log,
	}
}

// apiError is Discord's error body; a 429 adds retry_after and global.
type apiError struct {
	Message    string  `json:"message"`
	Code       int     `json:"code"`
	RetryAfter float64 `json:"retry_after"`
	Global     bool    `json:"global"`
}

// request describes one REST call.
type request struct {
	op     string // for error messages: "create message"
	method string
	route  string
	major  string // channel id
	path   string // relative to base, already escaped
	body   any
	// idempotent requests (GET, PATCH, typing) are plain temporary failures
	// when the response is lost; others are ambiguous.
	idempotent bool
	// raw, when set, is sent instead of body: length bytes of contentType
	// (a multipart upload), bounded by timeout rather than the client's.
	raw         io.Reader
	contentType string
	length      int64
	timeout     time.Duration
}

// do sends r and decodes a 2xx JSON answer into out (may be nil). Errors are
// classified with the adapter sentinels.
func (c *restClient) do(ctx context.Context, r request, out any) error {
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("discord: %s: %w: %v", r.op, adapter.ErrPermanent, err)
		}
	}
	if err := c.lim.acquire(ctx, r.route, r.major); err != nil {
		return fmt.Errorf("discord: %s: %w", r.op, err)
	}
	timeout := c.timeout
	if r.timeout > 0 {
		timeout = r.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	var rd io.Reader = bytes.NewReader(body)
	if r.raw != nil {
		rd = r.raw
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base+r.path, rd)
	if err != nil {
		return fmt.Errorf("discord: %s: %w: %v", r.op, adapter.ErrPermanent, err)
	}
	req.Header.Set("Authorization", "Bot "+c.token.Reveal())
	req.Header.Set("User-Agent", userAgent)
	switch {
	case r.raw != nil:
		req.ContentLength = r.length
		req.Header.Set("Content-Type", r.contentType)
	case body != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(r, wrote.Load(), err)
	}
	defer resp.Body.Close()
	c.lim.update(r.route, r.major, resp.Header)
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		if rerr != nil {
			// Done on Discord's side, but the answer was lost.
			return c.transportError(r, true, rerr)
		}
		if out != nil && len(data) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				// Done on Discord's side too, but without a usable answer.
				return c.transportError(r, true, fmt.Errorf("bad response: %w", err))
			}
		}
		return nil
	case s == http.StatusTooManyRequests:
		return c.rateLimited(r, resp.Header, data)
	}
	detail := describe(resp.StatusCode, data)
	switch s := resp.StatusCode; {
	case s == http.StatusRequestEntityTooLarge:
		// 40005 "Request entity too large": over the upload limit.
		return fmt.Errorf("discord: %s: %w: %w: %s", r.op, adapter.ErrPermanent, adapter.ErrTooLarge, detail)
	case s == http.StatusUnauthorized:
		return fmt.Errorf("discord: %s: %w: %s (is the bot token valid?)", r.op, adapter.ErrUnauthorized, detail)
	case s >= 500:
		return fmt.Errorf("discord: %s: %w: %s", r.op, adapter.ErrTemporary, detail)
	default: // 400, 403 missing access/permissions, 404 unknown channel/message
		return fmt.Errorf("discord: %s: %w: %s", r.op, adapter.ErrPermanent, detail)
	}
}

func (c *restClient) transportError(r request, wrote bool, err error) error {
	if wrote && !r.idempotent {
		// The request reached the wire: Discord may have acted on it.
		return fmt.Errorf("discord: %s: %w: %w", r.op, adapter.ErrAmbiguous, err)
	}
	return fmt.Errorf("discord: %s: %w: %w", r.op, adapter.ErrTemporary, err)
}

func (c *restClient) rateLimited(r request, h http.Header, data []byte) error {
	var e apiError
	_ = json.Unmarshal(data, &e)
	after := boundSeconds(c.log, r.op+": retry_after", e.RetryAfter)
	if after == 0 {
		if s, err := strconv.ParseFloat(h.Get("Retry-After"), 64); err == nil {
			after = boundSeconds(c.log, r.op+": Retry-After", s)
		}
	}
	if after == 0 {
		after = time.Second
	}
	global := e.Global || strings.EqualFold(h.Get("X-RateLimit-Global"), "true")
	c.lim.limited(r.route, r.major, after, global)
	scope := h.Get("X-RateLimit-Scope")
	if scope == "" && global {
		scope = "global"
	}
	return &adapter.RetryAfterError{
		After: after,
		Err:   fmt.Errorf("discord: %s: %w: %s (scope %q)", r.op, adapter.ErrRateLimited, orDefault(e.Message, "429 Too Many Requests"), scope),
	}
}

func describe(status int, data []byte) string {
	var e apiError
	if json.Unmarshal(data, &e) == nil && e.Message != "" {
		if e.Code != 0 {
			return fmt.Sprintf("%d %s (code %d)", status, e.Message, e.Code)
		}
		return fmt.Sprintf("%d %s", status, e.Message)
	}
	return fmt.Sprintf("%d %s", status, http.StatusText(status))
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// gatewayInfo is the answer of GET /gateway/bot.
type gatewayInfo struct {
	URL               string `json:"url"`
	SessionStartLimit struct {
		Total      int   `json:"total"`
		Remaining  int   `json:"remaining"`
		ResetAfter int64 `json:"reset_after"` // ms
	} `json:"session_start_limit"`
}

// gatewayBot returns the gateway URL. wait > 0 means the daily
// session-start budget is spent: a new session (Identify) may only start
// after wait.
func (c *restClient) gatewayBot(ctx context.Context) (u string, wait time.Duration, err error) {
	var g gatewayInfo
	err = c.do(ctx, request{op: "get gateway", method: http.MethodGet, route: routeGatewayBot, path: "/gateway/bot", idempotent: true}, &g)
	if err != nil {
		return "", 0, err
	}
	p, perr := url.Parse(g.URL)
	if perr != nil || (p.Scheme != "wss" && p.Scheme != "ws") || p.Host == "" {
		return "", 0, fmt.Errorf("discord: get gateway: %w: bad url %q", adapter.ErrTemporary, g.URL)
	}
	if g.SessionStartLimit.Total > 0 && g.SessionStartLimit.Remaining <= 0 {
		// The budget is daily: a longer wait is a broken answer.
		var clamped bool
		wait, clamped = adapter.BoundWait(float64(g.SessionStartLimit.ResetAfter), time.Millisecond, 0, 24*time.Hour)
		if clamped {
			adapter.LogClamp(c.log, "discord: get gateway: session_start_limit.reset_after (ms)", g.SessionStartLimit.ResetAfter, wait)
		}
	}
	return g.URL, wait, nil
}

type messageRef struct {
	MessageID       string `json:"message_id"`
	FailIfNotExists bool   `json:"fail_if_not_exists"`
}

type allowedMentions struct {
	Parse []string `json:"parse"`
}

// noMentions stops replies from pinging anyone: agent output is untrusted
// text and may contain @everyone or <@id>.
var noMentions = &allowedMentions{Parse: []string{}}

type createMessage struct {
	Content string `json:"content"`
	// Attachments describe the files[n] parts of a multipart create.
	Attachments      []attachmentRef  `json:"attachments,omitempty"`
	Nonce            string           `json:"nonce,omitempty"`
	EnforceNonce     bool             `json:"enforce_nonce,omitempty"`
	MessageReference *messageRef      `json:"message_reference,omitempty"`
	AllowedMentions  *allowedMentions `json:"allowed_mentions"`
	Components       []component      `json:"components,omitempty"`
}

type attachmentRef struct {
	ID       int    `json:"id"`
	Filename string `json:"filename"`
}

type editMessage struct {
	Content         string           `json:"content"`
	AllowedMentions *allowedMentions `json:"allowed_mentions"`
}

type messageResp struct {
	ID string `json:"id"`
}

// maxNonce is Discord's limit for a message nonce.
const maxNonce = 25

// nonce derives the message nonce from an idempotency key. Keys of up to 25
// characters are used as they are. Longer keys are hashed, not truncated:
// herald's keys (message.IdempotencyKey) are "hr-<32 hex>-<part>", and
// cutting them at 25 characters would give every part of one reply the
// same nonce, so Discord would drop parts 2..n as duplicates of part 1.
func nonce(key string) string {
	if key == "" {
		return ""
	}
	if len(key) <= maxNonce {
		return key
	}
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])[:maxNonce]
}

// chunkNonce is the nonce of chunk i (0-based) of a Send that had to split
// its text.
func chunkNonce(key string, i int) string {
	if key == "" || i == 0 {
		return nonce(key)
	}
	return nonce(key + "/" + strconv.Itoa(i))
}

// split cuts s into parts of at most n characters (code points), preferring
// to cut after a newline in the second half of a part.
func split(s string, n int) []string {
	var parts []string
	for utf8.RuneCountInString(s) > n {
		// Byte offset of the n-th rune.
		cut, count := 0, 0
		for i := range s {
			if count == n {
				cut = i
				break
			}
			count++
		}
		if nl := strings.LastIndexByte(s[:cut], '\n'); nl >= 0 && utf8.RuneCountInString(s[:nl+1]) > n/2 {
			cut = nl + 1
		}
		parts = append(parts, s[:cut])
		s = s[cut:]
	}
	return append(parts, s)
}

func channelPath(id string) string { return "/channels/" + url.PathEscape(id) }

// isFatal reports whether a REST error during connection setup can never
// be fixed by retrying.
func isFatal(err error) bool {
	return errors.Is(err, adapter.ErrUnauthorized) || errors.Is(err, adapter.ErrPermanent)
}
