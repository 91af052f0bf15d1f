// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// maxResponseBody bounds how much of an API answer is read.
const maxResponseBody = 64 << 10

// Timing of the token cache and of rate limits; not configuration.
const (
	// refreshMargin renews a token this long before WeCom's expires_in
	// runs out (7200 s), so that no call carries a token about to expire.
	refreshMargin = 5 * time.Minute
	// minTokenLife is the least lifetime trusted from expires_in.
	minTokenLife = time.Minute
	// rateWait is the wait after a frequency-limit code: WeCom's answers
	// name no retry time.
	rateWait = 10 * time.Second
)

// WeCom error codes (全局错误码) the adapter treats specially.
const (
	codeBusy            = -1    // system busy, retry
	codeInvalidSecret   = 40001 // invalid secret (or access_token)
	codeInvalidCorpID   = 40013 // invalid corp id
	codeInvalidToken    = 40014 // invalid access_token
	codeInvalidAgentID  = 40056 // invalid agentid
	codeInvalidSecretID = 40091 // invalid secret
	codeMissingToken    = 41001 // access_token missing
	codeTokenExpired    = 42001 // access_token expired
	codeFrequency       = 45009 // API call frequency exceeded
	codeFrequencyMember = 45011 // frequency limit on the recipient
	codeConcurrency     = 45033 // too many concurrent calls
	codeForbidden       = 48002 // API forbidden for this application
	codeIPNotAllowed    = 60020 // the caller's IP is not trusted
)

// apiError is an answer with a nonzero errcode, or a non-2xx status.
type apiError struct {
	Status  int    `json:"-"`
	Code    int    `json:"errcode"`
	Message string `json:"errmsg"`
}

func (e *apiError) Error() string {
	if e.Status/100 != 2 {
		return fmt.Sprintf("wecom api: HTTP %d", e.Status)
	}
	return fmt.Sprintf("wecom api: errcode %d: %s", e.Code, e.Message)
}

// tokenRefresh says whether the answer asks for a new access token.
func (e *apiError) tokenRefresh() bool {
	return e.Code == codeTokenExpired || e.Code == codeInvalidToken || e.Code == codeMissingToken
}

// transportError is a failure without an answer; Written says whether the
// request had been written, so a message may have been sent.
type transportError struct {
	Err     error
	Written bool
}

func (e *transportError) Error() string { return e.Err.Error() }
func (e *transportError) Unwrap() error { return e.Err }

// api is the WeCom server API client with its access-token cache.
type api struct {
	base    string
	corpID  string
	secret  secret.Value
	client  *http.Client
	now     func() time.Time
	timeout time.Duration

	// mu serialises token fetches: one gettoken at a time, the others
	// wait for its result (bounded by their context).
	mu      chan struct{}
	tokMu   sync.Mutex
	token   string
	expires time.Time
}

func newAPI(base, corpID string, sec secret.Value, client *http.Client, timeout time.Duration) *api {
	return &api{base: strings.TrimRight(base, "/"), corpID: corpID, secret: sec, client: client,
		now: time.Now, timeout: timeout, mu: make(chan struct{}, 1)}
}

// cached returns the cached token if it is still fresh.
func (c *api) cached() (string, bool) {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	return c.token, c.token != "" && c.now().Before(c.expires)
}

// invalidate drops the cached token if it is still stale.
func (c *api) invalidate(stale string) {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	if c.token == stale {
		c.token = ""
	}
}

// accessToken returns a fresh token, fetching one with GET
// /cgi-bin/gettoken when the cache holds none.
func (c *api) accessToken(ctx context.Context) (string, error) {
	if tok, ok := c.cached(); ok {
		return tok, nil
	}
	select {
	case c.mu <- struct{}{}:
	case <-ctx.Done():
		return "", &transportError{Err: fmt.Errorf("wait for token: %w", ctx.Err())}
	}
	defer func() { <-c.mu }()
	if tok, ok := c.cached(); ok {
		return tok, nil
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	q := url.Values{"corpid": {c.corpID}, "corpsecret": {c.secret.Reveal()}}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := c.do(cctx, http.MethodGet, "/cgi-bin/gettoken?"+q.Encode(), nil, &out); err != nil {
		var te *transportError
		if errors.As(err, &te) {
			te.Written = false // gettoken sends nothing: safe to repeat
		}
		return "", fmt.Errorf("gettoken: %w", err)
	}
	if out.AccessToken == "" {
		return "", &transportError{Err: errors.New("gettoken: answer without access_token")}
	}
	life := time.Duration(out.ExpiresIn)*time.Second - refreshMargin
	if life < minTokenLife {
		life = minTokenLife
	}
	c.tokMu.Lock()
	c.token, c.expires = out.AccessToken, c.now().Add(life)
	c.tokMu.Unlock()
	return out.AccessToken, nil
}

// call runs method path with the access token, renewing the token once
// when WeCom answers that it expired or is invalid (nothing was done).
func (c *api) call(ctx context.Context, method, path string, body, out any) error {
	return c.withToken(ctx, c.timeout, func(ctx context.Context, tok string) error {
		return c.do(ctx, method, withToken(path, tok), body, out)
	})
}

// withToken calls fn with the access token, each try bounded by timeout;
// a token WeCom answers as expired or invalid (nothing was done) is
// renewed and fn called once more.
func (c *api) withToken(ctx context.Context, timeout time.Duration, fn func(ctx context.Context, tok string) error) error {
	for attempt := 0; ; attempt++ {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err = fn(cctx, tok)
		cancel()
		var ae *apiError
		if attempt == 0 && errors.As(err, &ae) && ae.tokenRefresh() {
			c.invalidate(tok)
			continue
		}
		return err
	}
}

// withToken appends the access_token parameter to path.
func withToken(path, tok string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "access_token=" + url.QueryEscape(tok)
}

// do sends method path with body (JSON, may be nil) and decodes the
// answer into out (may be nil); a nonzero errcode is an *apiError.
func (c *api) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	var ct string
	var length int64
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd, ct, length = bytes.NewReader(b), "application/json", int64(len(b))
	}
	return c.send(ctx, method, path, rd, ct, length, out)
}

// send is do with a prepared body of length bytes and its Content-Type.
func (c *api) send(ctx context.Context, method, path string, rd io.Reader, contentType string, length int64, out any) error {
	ctx, written := adapter.TrackWritten(ctx)
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", c.scrub(err))
	}
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
		req.ContentLength = length
	}
	resp, err := c.client.Do(req)
	if err != nil {
		// The URL carries the secret or the token: net/http quotes it.
		return &transportError{Err: c.scrub(err), Written: written()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return &transportError{Err: fmt.Errorf("read answer: %w", c.scrub(err)), Written: true}
	}
	if resp.StatusCode/100 != 2 {
		return &apiError{Status: resp.StatusCode}
	}
	ae := &apiError{Status: resp.StatusCode}
	if err := json.Unmarshal(b, ae); err != nil {
		return &transportError{Err: errors.New("decode answer: not JSON"), Written: true}
	}
	if ae.Code != 0 {
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return &transportError{Err: fmt.Errorf("decode answer: %w", err), Written: true}
		}
	}
	return nil
}

// scrub removes the secret and the token from an error text.
func (c *api) scrub(err error) error {
	s := err.Error()
	tok, _ := c.cached()
	for _, v := range []string{c.secret.Reveal(), url.QueryEscape(c.secret.Reveal()), tok, url.QueryEscape(tok)} {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	if s == err.Error() {
		return err
	}
	return errors.New(s)
}

// classify maps a failed API call to the adapter sentinels. unsafe marks
// a call that must not be repeated after an unknown outcome (a send).
func classify(what string, err error, unsafe bool) error {
	var ae *apiError
	var te *transportError
	switch {
	case errors.As(err, &ae):
		switch {
		case ae.Code == codeFrequency || ae.Code == codeFrequencyMember || ae.Code == codeConcurrency ||
			ae.Status == http.StatusTooManyRequests:
			return fmt.Errorf("wecom: %s: %w", what,
				&adapter.RetryAfterError{After: rateWait, Err: fmt.Errorf("%w: %v", adapter.ErrRateLimited, ae)})
		case ae.Code == codeInvalidSecret || ae.Code == codeInvalidCorpID || ae.Code == codeInvalidAgentID ||
			ae.Code == codeInvalidSecretID || ae.Code == codeForbidden || ae.Code == codeIPNotAllowed ||
			ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
			return fmt.Errorf("wecom: %s: %w: %v", what, adapter.ErrUnauthorized, ae)
		case ae.tokenRefresh() || ae.Code == codeBusy || ae.Status/100 == 5:
			// A token rejected right after renewal is WeCom's trouble.
			return fmt.Errorf("wecom: %s: %w: %v", what, adapter.ErrTemporary, ae)
		default:
			return fmt.Errorf("wecom: %s: %w: %v", what, adapter.ErrPermanent, ae)
		}
	case errors.As(err, &te) && te.Written && unsafe:
		return fmt.Errorf("wecom: %s: %w: %v (the request was sent; WeCom may have delivered it)",
			what, adapter.ErrAmbiguous, te)
	default:
		return fmt.Errorf("wecom: %s: %w: %w", what, adapter.ErrTemporary, err)
	}
}
