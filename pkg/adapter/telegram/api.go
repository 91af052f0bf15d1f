// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// maxAnswer bounds one API answer (a getUpdates batch of 100 updates is far
// smaller).
const maxAnswer = 16 << 20

// client is herald's Bot API client: POST with a JSON body to
// <api_url>/bot<token>/<method>, answers in the {"ok":…} envelope.
type client struct {
	base  string
	token secret.Value
	tr    *http.Transport
	http  *http.Client
	// log records a retry_after out of bounds; set by New.
	log *logrus.Entry
}

func newClient(base string, token secret.Value, requestTimeout time.Duration) *client {
	dialer := &net.Dialer{Timeout: requestTimeout, KeepAlive: 30 * time.Second}
	// HTTP/1.1 only (a custom DialContext without ForceAttemptHTTP2 keeps
	// HTTP/2 off): the long poll and each send get their own connection, and
	// a call cut by its deadline closes its connection. Over HTTP/2 all
	// calls would share one connection, and one that died silently (NAT
	// timeout) would keep swallowing new calls until they time out.
	tr := &http.Transport{
		// Loopback addresses are never proxied, so tests stay local.
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: requestTimeout,
		MaxIdleConns:        8,
		MaxIdleConnsPerHost: 8,
		// Below common server keep-alive timeouts (nginx: 75 s), so a send
		// rarely races the server closing an idle connection, which would
		// make it look ambiguous.
		IdleConnTimeout:       30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	// No http.Client.Timeout: every call carries a context deadline sized
	// for its method (the long poll needs poll_timeout + request_timeout).
	return &client{base: base, token: token, tr: tr, http: &http.Client{Transport: tr}, log: logrus.NewEntry(logrus.StandardLogger())}
}

// apiError is an answer of the Bot API with ok:false, or a non-2xx status
// without a readable envelope.
type apiError struct {
	Code        int
	Description string
	// RetryAfter is parameters.retry_after (429, sometimes 5xx), within
	// [0, adapter.MaxRetryAfter].
	RetryAfter time.Duration
	// MigrateTo is parameters.migrate_to_chat_id: the group became a
	// supergroup with this id.
	MigrateTo int64
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%d %s", e.Code, e.Description)
	if e.MigrateTo != 0 {
		s += fmt.Sprintf(" (chat migrated to %d)", e.MigrateTo)
	}
	return s
}

// transportError is a call that got no usable answer.
type transportError struct {
	// Written: the whole request had been written when the call failed, so
	// Telegram may have acted on it.
	Written bool
	Err     error
}

func (e *transportError) Error() string { return e.Err.Error() }
func (e *transportError) Unwrap() error { return e.Err }

type envelope struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  *struct {
		RetryAfter      float64 `json:"retry_after"`
		MigrateToChatID int64   `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// call performs one API call. params is marshalled as the JSON body; the
// result field of a successful answer is unmarshalled into result (if not
// nil). Errors are *apiError, *transportError or a ctx error wrapped in a
// *transportError; none contains the token.
func (c *client) call(ctx context.Context, method string, params, result any) error {
	body := []byte("{}")
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("encoding parameters: %w", err)
		}
		body = b
	}
	return c.do(ctx, method, bytes.NewReader(body), "application/json", int64(len(body)), result)
}

// do performs one API call with body of length bytes as contentType; see
// call.
func (c *client) do(ctx context.Context, method string, body io.Reader, contentType string, length int64, result any) error {
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				written.Store(true)
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/bot"+c.token.Reveal()+"/"+method, body)
	if err != nil {
		// The URL error would quote the token.
		return errors.New("cannot build the request URL from api_url and the token")
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", contentType)
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error quotes the URL, which holds the token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &transportError{Written: written.Load(), Err: c.redact(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return &transportError{Written: true, Err: fmt.Errorf("reading the answer: %w", c.redact(err))}
	}
	if len(data) > maxAnswer {
		return &transportError{Written: true, Err: fmt.Errorf("answer larger than %d bytes", maxAnswer)}
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return &apiError{Code: resp.StatusCode, Description: http.StatusText(resp.StatusCode)}
		}
		return &transportError{Written: true, Err: fmt.Errorf("malformed answer (HTTP %d): %w", resp.StatusCode, err)}
	}
	if !env.OK {
		e := &apiError{Code: env.ErrorCode, Description: env.Description}
		if e.Code == 0 {
			e.Code = resp.StatusCode
		}
		if e.Code >= 200 && e.Code <= 299 {
			// ok:false with a success status: treat as a server fault.
			e.Code = http.StatusInternalServerError
		}
		if env.Parameters != nil {
			var clamped bool
			e.RetryAfter, clamped = adapter.BoundWait(env.Parameters.RetryAfter, time.Second, 0, adapter.MaxRetryAfter)
			if clamped {
				adapter.LogClamp(c.log, "telegram: "+method+": retry_after", env.Parameters.RetryAfter, e.RetryAfter)
			}
			e.MigrateTo = env.Parameters.MigrateToChatID
		}
		return e
	}
	if result != nil {
		if err := json.Unmarshal(env.Result, result); err != nil {
			return &transportError{Written: true, Err: fmt.Errorf("malformed result: %w", err)}
		}
	}
	return nil
}

// redact removes the token from err's text should any layer have quoted it.
func (c *client) redact(err error) error {
	if err == nil || c.token.IsZero() || !strings.Contains(err.Error(), c.token.Reveal()) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), c.token.Reveal(), "<token>"))
}

// close releases idle connections; in-flight calls end with their contexts.
func (c *client) close() { c.tr.CloseIdleConnections() }

// user is a Telegram User.
type user struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Username  string `json:"username"`
}

func (c *client) getMe(ctx context.Context) (user, error) {
	var me user
	err := c.call(ctx, "getMe", nil, &me)
	return me, err
}

type getUpdatesParams struct {
	Offset         int64    `json:"offset,omitempty"`
	Limit          int      `json:"limit"`
	Timeout        int      `json:"timeout"`
	AllowedUpdates []string `json:"allowed_updates"`
}

func (c *client) getUpdates(ctx context.Context, p getUpdatesParams) ([]json.RawMessage, error) {
	var ups []json.RawMessage
	err := c.call(ctx, "getUpdates", p, &ups)
	return ups, err
}
