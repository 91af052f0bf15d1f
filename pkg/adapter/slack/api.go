// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

const (
	userAgent = "herald (+https://github.com/heraldgw/herald)"
	// maxResponse bounds a Web API answer read into memory.
	maxResponse = 1 << 20
	// defaultRetryAfter is used when a 429 carries no usable Retry-After.
	defaultRetryAfter = time.Second
)

// Web API error codes (the "error" of {"ok":false}) that no retry can fix
// because the token is wrong, revoked or lacks a scope. For
// apps.connections.open they end intake (PhaseFatal).
var unauthorizedCodes = map[string]bool{
	"invalid_auth":            true,
	"not_authed":              true,
	"account_inactive":        true,
	"token_revoked":           true,
	"token_expired":           true,
	"not_allowed_token_type":  true,
	"missing_scope":           true,
	"no_permission":           true,
	"team_access_not_granted": true,
}

// Error codes worth retrying; any other code is permanent.
var temporaryCodes = map[string]bool{
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
}

// webAPI is a minimal Slack Web API client: JSON POSTs with a bearer token.
type webAPI struct {
	base   string // without trailing slash
	client *http.Client
	log    *logrus.Entry // records a Retry-After out of bounds
}

// apiResult is the union of the fields herald reads from Web API answers.
type apiResult struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error"`
	URL     string `json:"url"`
	Channel string `json:"channel"`
	TS      string `json:"ts"`

	raw []byte // the whole answer, for methods that read more
}

// call POSTs body as JSON (as a form if it is url.Values, no body when
// nil) to method and returns the
// answer if it is {"ok":true}. Errors wrap the adapter sentinels:
//
//   - transport failure before the request was written: ErrTemporary;
//     after it (a timeout waiting for the answer): ErrAmbiguous, because
//     Slack may have acted on it;
//   - HTTP 429 or error "ratelimited": *adapter.RetryAfterError with
//     ErrRateLimited; 5xx: ErrTemporary (with Retry-After if sent);
//   - {"ok":false}: ErrUnauthorized, ErrTemporary or ErrPermanent by code.
func (w *webAPI) call(ctx context.Context, method string, token secret.Value, body any) (apiResult, error) {
	var rd io.Reader = http.NoBody
	ctype := "application/x-www-form-urlencoded"
	if form, ok := body.(url.Values); ok {
		// Read methods (conversations.*) take form parameters.
		rd = strings.NewReader(form.Encode())
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiResult{}, fmt.Errorf("slack: %s: %w: %v", method, adapter.ErrPermanent, err)
		}
		rd = bytes.NewReader(b)
		ctype = "application/json; charset=utf-8"
	}
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				wrote.Store(true)
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/"+method, rd)
	if err != nil {
		return apiResult{}, fmt.Errorf("slack: %s: %w: %v", method, adapter.ErrPermanent, err)
	}
	req.Header.Set("Authorization", "Bearer "+token.Reveal())
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", userAgent)
	resp, err := w.client.Do(req)
	if err != nil {
		if wrote.Load() {
			return apiResult{}, fmt.Errorf("slack: %s: %w: no answer after the request was sent: %v", method, adapter.ErrAmbiguous, err)
		}
		return apiResult{}, fmt.Errorf("slack: %s: %w: %v", method, adapter.ErrTemporary, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return apiResult{}, fmt.Errorf("slack: %s: %w: reading the answer: %v", method, adapter.ErrAmbiguous, err)
	}
	var res apiResult
	jsonErr := json.Unmarshal(data, &res)
	retryAfter, hasRetryAfter := w.retryAfter(method, resp.Header.Get("Retry-After"))

	switch {
	case resp.StatusCode == http.StatusTooManyRequests || res.Error == "ratelimited":
		if !hasRetryAfter {
			retryAfter = defaultRetryAfter
		}
		return apiResult{}, &adapter.RetryAfterError{
			After: retryAfter,
			Err:   fmt.Errorf("slack: %s: %w (HTTP %d)", method, adapter.ErrRateLimited, resp.StatusCode),
		}
	case resp.StatusCode >= 500:
		err := fmt.Errorf("slack: %s: %w: HTTP %d", method, adapter.ErrTemporary, resp.StatusCode)
		if hasRetryAfter {
			return apiResult{}, &adapter.RetryAfterError{After: retryAfter, Err: err}
		}
		return apiResult{}, err
	case jsonErr != nil && resp.StatusCode == http.StatusOK:
		return apiResult{}, fmt.Errorf("slack: %s: %w: undecodable answer: %v", method, adapter.ErrAmbiguous, jsonErr)
	case jsonErr != nil:
		return apiResult{}, fmt.Errorf("slack: %s: %w: HTTP %d", method, adapter.ErrPermanent, resp.StatusCode)
	case res.OK && resp.StatusCode == http.StatusOK:
		res.raw = data
		return res, nil
	}
	code := res.Error
	if code == "" {
		code = "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	class := adapter.ErrPermanent
	switch {
	case unauthorizedCodes[code]:
		class = adapter.ErrUnauthorized
	case temporaryCodes[code]:
		class = adapter.ErrTemporary
	}
	return apiResult{}, &apiError{method: method, code: code, class: class}
}

// apiError is an {"ok":false} answer. Code is Slack's error string.
type apiError struct {
	method string
	code   string
	class  error
}

func (e *apiError) Error() string {
	return "slack: " + e.method + ": " + e.class.Error() + ": " + e.code
}
func (e *apiError) Unwrap() error { return e.class }

// retryAfter reads the Retry-After header of an answer to method, bounded
// by adapter.MaxRetryAfter; a clamp is logged.
func (w *webAPI) retryAfter(method, v string) (time.Duration, bool) {
	secs, ok := parseRetryAfter(v, time.Now())
	if !ok {
		return 0, false
	}
	d, clamped := adapter.BoundWait(secs, time.Second, 0, adapter.MaxRetryAfter)
	if clamped {
		adapter.LogClamp(w.log, "slack: "+method+": Retry-After", strings.TrimSpace(v), d)
	}
	return d, true
}

// parseRetryAfter reads a Retry-After header, delay-seconds or an HTTP
// date, as seconds (0 for a date in the past, +Inf for more seconds than
// fit in 64 bits).
func parseRetryAfter(v string, now time.Time) (float64, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		s, err := strconv.ParseUint(v, 10, 64)
		switch {
		case err == nil:
			return float64(s), true
		case errors.Is(err, strconv.ErrRange):
			return math.Inf(1), true
		}
		return 0, false
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now).Seconds()), true
	}
	return 0, false
}
