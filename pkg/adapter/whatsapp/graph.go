// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// maxResponseBody bounds how much of a Graph API answer is read.
const maxResponseBody = 64 << 10

// defaultRateWait is the wait after a rate-limit error that names no
// Retry-After: the Graph API's WhatsApp throttling codes carry none.
const defaultRateWait = 5 * time.Second

// graphError is the Graph API's error object:
// {"error":{"message","type","code","error_subcode","error_data":{"details"},"fbtrace_id"}}.
type graphError struct {
	Status     int    `json:"-"`
	RetryAfter string `json:"-"`
	Message    string `json:"message"`
	Type       string `json:"type"`
	Code       int    `json:"code"`
	Subcode    int    `json:"error_subcode"`
	Data       struct {
		Details string `json:"details"`
	} `json:"error_data"`
}

func (e *graphError) Error() string {
	s := fmt.Sprintf("graph api: HTTP %d: code %d: %s", e.Status, e.Code, e.Message)
	if e.Data.Details != "" {
		s += " (" + e.Data.Details + ")"
	}
	return s
}

// transportError is a failure without a Graph API answer; Written says
// whether the request had been written, so the message may have been sent.
type transportError struct {
	Err     error
	Written bool
}

func (e *transportError) Error() string { return e.Err.Error() }
func (e *transportError) Unwrap() error { return e.Err }

// graph is the Graph API client: base URL with version, bearer token.
type graph struct {
	base   string // {graph_url}/{version}
	token  secret.Value
	client *http.Client
}

// do sends method path with body (JSON, may be nil) and decodes a 2xx
// answer into out (may be nil).
func (g *graph) do(ctx context.Context, method, path string, body, out any) error {
	if body == nil {
		return g.doRaw(ctx, method, path, nil, "", 0, out)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return g.doRaw(ctx, method, path, bytes.NewReader(b), "application/json", int64(len(b)), out)
}

// doRaw sends method path with body (nil: none) of contentType and length
// bytes, and decodes a 2xx answer into out (may be nil).
func (g *graph) doRaw(ctx context.Context, method, path string, body io.Reader, contentType string, length int64, out any) error {
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { written.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+g.token.Reveal())
	if body != nil {
		req.Header.Set("Content-Type", contentType)
		req.ContentLength = length
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return &transportError{Err: scrub(err, g.token.Reveal()), Written: written.Load()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return &transportError{Err: fmt.Errorf("read answer: %w", err), Written: true}
	}
	if resp.StatusCode/100 != 2 {
		ge := &graphError{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
		var env struct {
			Error *graphError `json:"error"`
		}
		if json.Unmarshal(b, &env) == nil && env.Error != nil {
			env.Error.Status, env.Error.RetryAfter = ge.Status, ge.RetryAfter
			ge = env.Error
		} else {
			ge.Message = http.StatusText(resp.StatusCode)
		}
		return ge
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return &transportError{Err: fmt.Errorf("decode answer: %w", err), Written: true}
		}
	}
	return nil
}

// scrub removes the token from an error text (net/http errors quote URLs,
// not headers, but a misconfigured proxy could echo anything).
func scrub(err error, token string) error {
	if token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), token, "[token]"))
}

// Graph API error codes the adapter treats specially.
const (
	codeAuth           = 0      // AuthException
	codeTooManyCalls   = 4      // app rate limit
	codePermission     = 10     // permission denied
	codeTokenExpired   = 190    // access token expired or invalid
	codeRateLimit      = 80007  // WhatsApp Business Account rate limit
	codeThroughput     = 130429 // Cloud API throughput reached
	codeSpamRate       = 131048 // spam rate limit
	codePairRate       = 131056 // business/consumer pair rate limit
	codeReEngagement   = 131047 // more than 24 hours since the user's last message
	codeGeneric        = 131000 // something went wrong
	codeUnavailable    = 131016 // service unavailable
	codeUnknownAPI     = 1
	codeServiceAPI     = 2
	codePermissionLow  = 200
	codePermissionHigh = 299
)

// classify maps a failed Graph API call to the adapter sentinels. unsafe
// marks a call that must not be repeated after an unknown outcome (a send:
// the Cloud API has no idempotency key).
func classify(what string, err error, unsafe bool, log func(given string, used time.Duration)) error {
	var ge *graphError
	var te *transportError
	switch {
	case errors.As(err, &ge):
		switch {
		case ge.Status == http.StatusTooManyRequests || ge.Code == codeTooManyCalls || ge.Code == codeRateLimit ||
			ge.Code == codeThroughput || ge.Code == codePairRate || ge.Code == codeSpamRate:
			after := defaultRateWait
			if ge.RetryAfter != "" {
				n, perr := strconv.ParseFloat(ge.RetryAfter, 64)
				if perr != nil {
					n = defaultRateWait.Seconds()
				}
				var clamped bool
				if after, clamped = adapter.BoundWait(n, time.Second, 0, adapter.MaxRetryAfter); clamped && log != nil {
					log(ge.RetryAfter, after)
				}
			}
			return fmt.Errorf("whatsapp: %s: %w", what,
				&adapter.RetryAfterError{After: after, Err: fmt.Errorf("%w: %v", adapter.ErrRateLimited, ge)})
		case ge.Status == http.StatusUnauthorized || ge.Code == codeTokenExpired || ge.Code == codeAuth && ge.Status < 500 ||
			ge.Code == codePermission || ge.Code >= codePermissionLow && ge.Code <= codePermissionHigh:
			return fmt.Errorf("whatsapp: %s: %w: %v", what, adapter.ErrUnauthorized, ge)
		case ge.Code == codeReEngagement:
			return fmt.Errorf("whatsapp: %s: %w: %w: WhatsApp accepts only a template now: %v",
				what, adapter.ErrPermanent, ErrOutsideWindow, ge)
		case ge.Status >= 500 || ge.Code == codeUnknownAPI || ge.Code == codeServiceAPI || ge.Code == codeGeneric || ge.Code == codeUnavailable:
			return fmt.Errorf("whatsapp: %s: %w: %v", what, adapter.ErrTemporary, ge)
		default:
			return fmt.Errorf("whatsapp: %s: %w: %v", what, adapter.ErrPermanent, ge)
		}
	case errors.As(err, &te) && te.Written && unsafe:
		return fmt.Errorf("whatsapp: %s: %w: %v (the request was sent; WhatsApp may have delivered it and has no idempotency key)",
			what, adapter.ErrAmbiguous, te)
	default:
		return fmt.Errorf("whatsapp: %s: %w: %w", what, adapter.ErrTemporary, err)
	}
}
