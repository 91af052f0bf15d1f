// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// OpenAPI paths, relative to api_url.
const (
	pathOpen        = "/v1.0/gateway/connections/open"
	pathToken       = "/v1.0/oauth2/accessToken"
	pathBatchSend   = "/v1.0/robot/oToMessages/batchSend"
	pathGroupSend   = "/v1.0/robot/groupMessages/send"
	headerToken     = "x-acs-dingtalk-access-token"
	maxResponseBody = 1 << 20
)

// apiError is an answer DingTalk gave: an HTTP status outside 2xx with the
// OpenAPI error body {"code", "message"}, or a 200 whose legacy body
// carries a non-zero errcode (session webhooks).
type apiError struct {
	Status     int
	Code       string
	Message    string
	ErrCode    int
	RetryAfter time.Duration
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.ErrCode != 0 {
		fmt.Fprintf(&b, " errcode %d", e.ErrCode)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// Codes DingTalk answers for rejected credentials or tokens.
var authCodes = map[string]bool{
	"InvalidAuthentication": true, // access token invalid or expired
	"invalidClientId":       true,
	"invalidClientSecret":   true,
	"InvalidClientId":       true,
	"InvalidClientSecret":   true,
	"Unauthorized":          true,
}

// Legacy errcodes of the session webhook and the oapi: 130101 "send too
// fast", 90018 and 90002 call frequency limits.
var limitErrCodes = map[int]bool{130101: true, 90018: true, 90002: true}

// unauthorized reports a rejected credential or access token.
func (e *apiError) unauthorized() bool {
	return e.Status == http.StatusUnauthorized || authCodes[e.Code] || authErrCodes[e.ErrCode]
}

// Legacy errcodes of the oapi (media upload) for a token it does not take:
// 40014 invalid access_token, 42001 access_token expired.
var authErrCodes = map[int]bool{40014: true, 42001: true}

// limited reports a frequency limit: HTTP 429, the OpenAPI flow-control
// codes (Forbidden.AccessDenied.QpsLimitForApi,
// Forbidden.AccessDenied.QpsLimitForAppkeyAndApi, Throttling…), or a
// legacy frequency errcode.
func (e *apiError) limited() bool {
	return e.Status == http.StatusTooManyRequests || strings.Contains(e.Code, "QpsLimit") ||
		strings.HasPrefix(e.Code, "Throttling") || limitErrCodes[e.ErrCode]
}

// transportError is a call that got no answer. Written: the request had
// been written, so DingTalk may have acted on it.
type transportError struct {
	Written bool
	Err     error
}

func (e *transportError) Error() string { return e.Err.Error() }
func (e *transportError) Unwrap() error { return e.Err }

// client is the OpenAPI client: connection tickets, access tokens, robot
// sends, session webhooks.
type client struct {
	base     string
	clientID string
	secret   secret.Value
	http     *http.Client
	log      *logrus.Entry
	now      func() time.Time

	mu       sync.Mutex
	token    string
	tokenExp time.Time // refresh from here on
}

func newClient(base, clientID string, sec secret.Value, log *logrus.Entry) *client {
	return &client{
		base: base, clientID: clientID, secret: sec, log: log, now: time.Now,
		http: &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}},
	}
}

func (c *client) close() { c.http.CloseIdleConnections() }

// post sends body as JSON to url and decodes a 2xx answer into out (nil:
// discard). token, if not empty, goes in the access token header. The
// caller bounds ctx.
func (c *client) post(ctx context.Context, url, token string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	var written bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { written = true },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set(headerToken, token)
	}
	return c.do(req, &written, out)
}

// do sends req (built with a context carrying a trace that sets *written)
// and decodes a 2xx answer into out (nil: discard). A transport error
// never quotes the URL, whose query may hold a token.
func (c *client) do(req *http.Request, written *bool, out any) error {
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s %s%s: %w", req.Method, req.URL.Host, req.URL.Path, ue.Err)
		}
		return &transportError{Written: *written, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return &transportError{Written: true, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &apiError{Status: resp.StatusCode}
		var eb struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &eb) == nil {
			ae.Code, ae.Message = eb.Code, eb.Message
		}
		if ae.Message == "" && ae.Code == "" {
			ae.Message = snippet(raw)
		}
		if s := resp.Header.Get("Retry-After"); s != "" {
			if n, err := strconv.ParseFloat(s, 64); err == nil {
				d, clamped := adapter.BoundWait(n, time.Second, time.Second, adapter.MaxRetryAfter)
				if clamped {
					adapter.LogClamp(c.log, "dingtalk: Retry-After", s, d)
				}
				ae.RetryAfter = d
			}
		}
		return ae
	}
	// A 200 may still carry a legacy error (session webhooks).
	var legacy struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if json.Unmarshal(raw, &legacy) == nil && legacy.ErrCode != nil && *legacy.ErrCode != 0 {
		return &apiError{Status: resp.StatusCode, ErrCode: *legacy.ErrCode, Message: legacy.ErrMsg}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

// upload posts a multipart body of length bytes to url (the legacy oapi,
// whose access token is a query parameter) and decodes the answer into
// out. The caller bounds ctx.
func (c *client) upload(ctx context.Context, url string, body io.Reader, contentType string, length int64, out any) error {
	var written bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { written = true },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return errors.New("build request: invalid URL")
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	return c.do(req, &written, out)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// endpoint is the answer of connections/open.
type endpoint struct {
	Endpoint string `json:"endpoint"`
	Ticket   string `json:"ticket"`
}

type subscription struct {
	Type  string `json:"type"`
	Topic string `json:"topic"`
}

// userAgent is the ua DingTalk records for the connection.
const userAgent = "herald-dingtalk/1"

// open registers a stream connection and returns its websocket endpoint
// and one-use ticket.
func (c *client) open(ctx context.Context) (endpoint, error) {
	body := struct {
		ClientID      string         `json:"clientId"`
		ClientSecret  string         `json:"clientSecret"`
		Subscriptions []subscription `json:"subscriptions"`
		UA            string         `json:"ua"`
	}{c.clientID, c.secret.Reveal(), []subscription{
		{Type: typeEvent, Topic: "*"},
		{Type: typeCallback, Topic: TopicBotMessage},
	}, userAgent}
	var ep endpoint
	if err := c.post(ctx, c.base+pathOpen, "", body, &ep); err != nil {
		return ep, err
	}
	if ep.Endpoint == "" || ep.Ticket == "" {
		return ep, errors.New("connections/open answered without endpoint or ticket")
	}
	return ep, nil
}

// Token refresh: a token is renewed tokenMargin before DingTalk says it
// expires (expireIn, 7200 s), or half-way through a shorter life.
const (
	tokenMargin = 5 * time.Minute
	maxTokenTTL = 24 * time.Hour
)

// accessToken returns the cached app access token, fetching a new one
// when it is missing or near expiry.
func (c *client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	tok, exp := c.token, c.tokenExp
	c.mu.Unlock()
	if tok != "" && c.now().Before(exp) {
		return tok, nil
	}
	body := struct {
		AppKey    string `json:"appKey"`
		AppSecret string `json:"appSecret"`
	}{c.clientID, c.secret.Reveal()}
	var out struct {
		AccessToken string  `json:"accessToken"`
		ExpireIn    float64 `json:"expireIn"`
	}
	if err := c.post(ctx, c.base+pathToken, "", body, &out); err != nil {
		return "", fmt.Errorf("oauth2/accessToken: %w", err)
	}
	if out.AccessToken == "" {
		return "", errors.New("oauth2/accessToken: answer without accessToken")
	}
	ttl, clamped := adapter.BoundWait(out.ExpireIn, time.Second, time.Second, maxTokenTTL)
	if clamped {
		adapter.LogClamp(c.log, "dingtalk: expireIn of the access token", out.ExpireIn, ttl)
	}
	margin := tokenMargin
	if ttl < 2*margin {
		margin = ttl / 2
	}
	c.mu.Lock()
	c.token, c.tokenExp = out.AccessToken, c.now().Add(ttl-margin)
	c.mu.Unlock()
	return out.AccessToken, nil
}

// dropToken forgets tok if it is still the cached token (DingTalk rejected
// it before its time).
func (c *client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token, c.tokenExp = "", time.Time{}
	}
}
