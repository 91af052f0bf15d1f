// SPDX-License-Identifier: Apache-2.0

package feishu

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// Platform codes of the REST API.
const (
	codeRateLimited     = 99991400 // request trigger frequency limit
	codeSendRateLimited = 230020   // message frequency limit
	maxRequestBytes     = 150 << 10
	maxUUIDLen          = 50
)

// tokenCodes mean the tenant access token is invalid or expired: refresh it
// and retry once.
var tokenCodes = map[int]bool{99991663: true, 99991664: true, 99991671: true}

// restClient calls the open platform's REST API with a cached tenant access
// token.
type restClient struct {
	base    string
	appID   string
	secret  secret.Value
	hc      *http.Client
	timeout time.Duration
	now     func() time.Time
	sem     chan struct{} // one token fetch at a time
	log     *logrus.Entry

	mu        sync.Mutex
	token     string
	refreshAt time.Time
}

// refreshAfter is how long a token with lifetime expire is used: until 3
// minutes before it expires (both tokens stay valid while the platform
// rotates them), or half its lifetime when that is short.
func refreshAfter(expire time.Duration) time.Duration {
	if expire > 6*time.Minute {
		return expire - 3*time.Minute
	}
	return expire / 2
}

func (c *restClient) cached() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.refreshAt) {
		return c.token
	}
	return ""
}

func (c *restClient) invalidate(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

// tenantToken returns a valid tenant access token, fetching one if needed.
func (c *restClient) tenantToken(ctx context.Context) (string, error) {
	if tok := c.cached(); tok != "" {
		return tok, nil
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("feishu: tenant_access_token: %w: %w", adapter.ErrTemporary, ctx.Err())
	}
	defer func() { <-c.sem }()
	if tok := c.cached(); tok != "" {
		return tok, nil
	}
	body := map[string]string{"app_id": c.appID, "app_secret": c.secret.Reveal()}
	var out struct {
		Token  string `json:"tenant_access_token"`
		Expire int    `json:"expire"`
	}
	// The token endpoint answers at the top level, not under data.
	if err := c.do(ctx, "tenant_access_token", http.MethodPost, "/open-apis/auth/v3/tenant_access_token/internal", "", body, &out, true); err != nil {
		var te *tokenError
		if errors.As(err, &te) || (!errors.Is(err, adapter.ErrTemporary) && !errors.Is(err, adapter.ErrRateLimited) && !errors.Is(err, adapter.ErrAmbiguous)) {
			// A refused token request means refused credentials.
			return "", fmt.Errorf("%w: %w", err, adapter.ErrUnauthorized)
		}
		if errors.Is(err, adapter.ErrAmbiguous) {
			// Nothing was sent yet: a lost token answer is just temporary.
			return "", fmt.Errorf("feishu: tenant_access_token: %w (%v)", adapter.ErrTemporary, err)
		}
		return "", err
	}
	if out.Token == "" || out.Expire <= 0 {
		return "", fmt.Errorf("feishu: tenant_access_token: no token in the response: %w", adapter.ErrTemporary)
	}
	c.mu.Lock()
	c.token = out.Token
	c.refreshAt = c.now().Add(refreshAfter(time.Duration(out.Expire) * time.Second))
	c.mu.Unlock()
	return out.Token, nil
}

// tokenError is an API answer saying the token was not accepted.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// call performs an authenticated API call, refreshing the token and retrying
// once if the platform rejects it. out receives "data", or the whole body
// when topLevel.
func (c *restClient) call(ctx context.Context, op, method, path string, body, out any, topLevel bool) error {
	for attempt := 0; ; attempt++ {
		tok, err := c.tenantToken(ctx)
		if err != nil {
			return err
		}
		err = c.do(ctx, op, method, path, tok, body, out, topLevel)
		var te *tokenError
		if errors.As(err, &te) && attempt == 0 {
			c.invalidate(tok)
			continue
		}
		return err
	}
}

// do sends one request and classifies the outcome with the sentinels of
// package adapter. out receives "data" (or the whole body when topLevel).
func (c *restClient) do(ctx context.Context, op, method, path, token string, body, out any, topLevel bool) error {
	var rd io.Reader
	contentType := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("feishu: %s: %w: %w", op, adapter.ErrPermanent, err)
		}
		if len(b) > maxRequestBytes {
			return fmt.Errorf("feishu: %s: request of %d bytes exceeds the platform's %d: %w", op, len(b), maxRequestBytes, adapter.ErrPermanent)
		}
		rd = bytes.NewReader(b)
		contentType = "application/json; charset=utf-8"
	}
	return c.doRaw(ctx, c.timeout, op, method, path, token, contentType, rd, out, topLevel)
}

// doRaw is do with an encoded body of type contentType (none if rd is
// nil), bounded by timeout.
func (c *restClient) doRaw(ctx context.Context, timeout time.Duration, op, method, path, token, contentType string, rd io.Reader, out any, topLevel bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
	})
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("feishu: %s: %w: %w", op, adapter.ErrPermanent, err)
	}
	req.Header.Set("User-Agent", userAgent)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if wrote.Load() {
			// The platform may have acted on it: only an idempotency key
			// makes a retry safe.
			return fmt.Errorf("feishu: %s: %w: %w", op, adapter.ErrAmbiguous, err)
		}
		return fmt.Errorf("feishu: %s: %w: %w", op, adapter.ErrTemporary, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("feishu: %s: reading response: %w: %w", op, adapter.ErrAmbiguous, err)
	}
	var env struct {
		Code *int            `json:"code"`
		Msg  string          `json:"msg"`
		Data json.RawMessage `json:"data"`
	}
	decErr := json.Unmarshal(raw, &env)
	code := 0
	if env.Code != nil {
		code = *env.Code
	}
	desc := fmt.Sprintf("HTTP %d, code %d: %s", resp.StatusCode, code, env.Msg)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || code == codeRateLimited || code == codeSendRateLimited:
		return &adapter.RetryAfterError{
			After: c.rateLimitReset(op, resp.Header.Get("x-ogw-ratelimit-reset")),
			Err:   fmt.Errorf("feishu: %s: %w (%s)", op, adapter.ErrRateLimited, desc),
		}
	case tokenCodes[code]:
		return &tokenError{fmt.Errorf("feishu: %s: access token rejected (%s): %w", op, desc, adapter.ErrUnauthorized)}
	case resp.StatusCode >= 500:
		return fmt.Errorf("feishu: %s: %w (%s)", op, adapter.ErrTemporary, desc)
	case decErr != nil || env.Code == nil:
		if resp.StatusCode/100 == 2 {
			return fmt.Errorf("feishu: %s: undecodable success response: %w", op, adapter.ErrAmbiguous)
		}
		return fmt.Errorf("feishu: %s: %w (HTTP %d)", op, adapter.ErrPermanent, resp.StatusCode)
	case code != 0 || resp.StatusCode/100 != 2:
		// 230001 bad parameter, 230002 bot not in the chat, 230006 bot
		// ability disabled, and every other refusal: not retryable.
		return fmt.Errorf("feishu: %s: %w (%s)", op, adapter.ErrPermanent, desc)
	}
	if out == nil {
		return nil
	}
	src := []byte(env.Data)
	if topLevel {
		src = raw
	}
	if len(src) == 0 {
		return nil
	}
	if err := json.Unmarshal(src, out); err != nil {
		return fmt.Errorf("feishu: %s: decoding response: %w: %w", op, adapter.ErrAmbiguous, err)
	}
	return nil
}

// rateLimitReset parses x-ogw-ratelimit-reset (seconds until the window
// resets) of an answer to op: 1 s when absent or invalid, at most
// adapter.MaxRetryAfter (a clamp is logged).
func (c *restClient) rateLimitReset(op, v string) time.Duration {
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || !(n > 0) {
		return time.Second
	}
	d, clamped := adapter.BoundWait(n, time.Second, 0, adapter.MaxRetryAfter)
	if clamped {
		adapter.LogClamp(c.log, "feishu: "+op+": x-ogw-ratelimit-reset", v, d)
	}
	return d
}

// textContent is the content field of a text message: JSON in a string.
// Mention tags in text are neutralised (see noMentions).
func textContent(text string) string {
	b, _ := json.Marshal(struct {
		Text string `json:"text"`
	}{noMentions(text)})
	return string(b)
}

// fullwidthLT is U+FF1C FULLWIDTH LESS-THAN SIGN.
const fullwidthLT = "\uFF1C"

// noMentions breaks every <at …> tag in text. A text message renders
// <at user_id="all"></at> as @all, which notifies everyone in the group, and
// <at user_id="ou_…"> (or id=, open_id=, email=) as a mention that notifies
// that user. The agent's text is untrusted (a prompt-injected reply could
// ping a whole group) and herald never mentions anyone on purpose, so the
// '<' of such a tag becomes U+FF1C, which looks alike and is not markup.
// Any other '<' is left alone.
func noMentions(text string) string {
	if !strings.Contains(text, "<") {
		return text
	}
	var b strings.Builder
	rest := text
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		b.WriteString(rest[:i])
		if isAtTag(rest[i+1:]) {
			b.WriteString(fullwidthLT)
		} else {
			b.WriteByte('<')
		}
		rest = rest[i+1:]
	}
	b.WriteString(rest)
	return b.String()
}

// isAtTag reports whether s, the text after a '<', may open an at tag:
// optional ASCII white space, "at" in any letter case, then the end or
// anything but a letter, digit, '_' or '-' (so "<atom>" stays as it is).
// It errs on the side of breaking: a false match only changes one glyph.
func isAtTag(s string) bool {
	s = strings.TrimLeft(s, " \t\n\r\f")
	if len(s) < 2 || !strings.EqualFold(s[:2], "at") {
		return false
	}
	if len(s) == 2 {
		return true
	}
	c := s[2]
	word := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	return !word
}

// requestUUID is the uuid sent with a message: the core's idempotency key,
// hashed down if it exceeds the platform's 50 characters.
func requestUUID(key string) string {
	if len(key) <= maxUUIDLen {
		return key
	}
	h := sha256.Sum256([]byte(key))
	return "h-" + hex.EncodeToString(h[:])[:40]
}

// botInfo returns the bot's open_id (GET /open-apis/bot/v3/info, which
// answers under "bot", not "data").
func (c *restClient) botInfo(ctx context.Context) (string, error) {
	var out struct {
		Bot struct {
			OpenID string `json:"open_id"`
		} `json:"bot"`
	}
	if err := c.call(ctx, "bot info", http.MethodGet, "/open-apis/bot/v3/info", nil, &out, true); err != nil {
		return "", err
	}
	if out.Bot.OpenID == "" {
		return "", fmt.Errorf("feishu: bot info: no open_id: %w", adapter.ErrPermanent)
	}
	return out.Bot.OpenID, nil
}
