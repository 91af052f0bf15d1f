// SPDX-License-Identifier: Apache-2.0

package matrix

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
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// maxAnswer bounds one answer of the homeserver.
const maxAnswer = 16 << 20

// client speaks the client-server API: JSON bodies, the access token in
// the Authorization header, errors as {"errcode", "error"}.
type client struct {
	base  string
	token secret.Value
	http  *http.Client
	log   *logrus.Entry
}

func newClient(base string, token secret.Value, requestTimeout time.Duration, log *logrus.Entry) *client {
	// No http.Client.Timeout: every call carries a context deadline.
	return &client{base: base, token: token, http: &http.Client{Transport: adapter.NewTransport(requestTimeout)}, log: log}
}

// apiError is an answer with a non-2xx status.
type apiError struct {
	Status  int
	Errcode string
	Message string
	// RetryAfter is retry_after_ms (or Retry-After) of a 429, clamped to
	// [0, adapter.MaxRetryAfter].
	RetryAfter time.Duration
}

func (e *apiError) Error() string {
	if e.Errcode == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Errcode, e.Message)
}

// unauthorized: the token is unknown, expired or revoked.
func (e *apiError) unauthorized() bool {
	return e.Errcode == "M_UNKNOWN_TOKEN" || e.Errcode == "M_MISSING_TOKEN" || (e.Status == 401 && e.Errcode == "")
}

// transportError is a call that got no usable answer.
type transportError struct {
	// Written: the whole request had been written when the call failed.
	Written bool
	Err     error
}

func (e *transportError) Error() string { return e.Err.Error() }
func (e *transportError) Unwrap() error { return e.Err }

// do performs one call. in, if not nil, is the JSON body; out, if not nil,
// receives the JSON answer. Errors are *apiError or *transportError and
// never contain the token (it travels in a header only).
func (c *client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				written.Store(true)
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &transportError{Written: written.Load(), Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return &transportError{Written: true, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if len(data) > maxAnswer {
		return &transportError{Written: true, Err: fmt.Errorf("answer larger than %d bytes", maxAnswer)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.apiError(path, resp, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return &transportError{Written: true, Err: fmt.Errorf("malformed answer (HTTP %d): %w", resp.StatusCode, err)}
		}
	}
	return nil
}

func (c *client) apiError(path string, resp *http.Response, data []byte) *apiError {
	var env struct {
		Errcode      string   `json:"errcode"`
		Error        string   `json:"error"`
		RetryAfterMS *float64 `json:"retry_after_ms"`
	}
	_ = json.Unmarshal(data, &env)
	e := &apiError{Status: resp.StatusCode, Errcode: env.Errcode, Message: env.Error}
	if len(e.Message) > 200 {
		e.Message = e.Message[:200]
	}
	if resp.StatusCode == http.StatusTooManyRequests || env.Errcode == "M_LIMIT_EXCEEDED" {
		// retry_after_ms in the body; newer homeservers also send the
		// Retry-After header (seconds), which wins when both are given.
		given, unit := -1.0, time.Millisecond
		if env.RetryAfterMS != nil {
			given = *env.RetryAfterMS
		}
		if h := resp.Header.Get("Retry-After"); h != "" {
			if s, err := strconv.ParseFloat(h, 64); err == nil {
				given, unit = s, time.Second
			}
		}
		if given >= 0 {
			var clamped bool
			e.RetryAfter, clamped = adapter.BoundWait(given, unit, 0, adapter.MaxRetryAfter)
			if clamped {
				adapter.LogClamp(c.log, "matrix: "+path+": retry_after", given, e.RetryAfter)
			}
		}
	}
	return e
}

// close releases idle connections; in-flight calls end with their contexts.
func (c *client) close() { c.http.CloseIdleConnections() }

func (c *client) whoami(ctx context.Context) (string, error) {
	var r struct {
		UserID string `json:"user_id"`
	}
	if err := c.do(ctx, http.MethodGet, "/_matrix/client/v3/account/whoami", nil, nil, &r); err != nil {
		return "", err
	}
	if !validUserID(r.UserID) {
		return "", &transportError{Written: true, Err: fmt.Errorf("whoami answered user_id %q", r.UserID)}
	}
	return r.UserID, nil
}

func (c *client) displayName(ctx context.Context, user string) (string, error) {
	var r struct {
		DisplayName string `json:"displayname"`
	}
	err := c.do(ctx, http.MethodGet, "/_matrix/client/v3/profile/"+url.PathEscape(user)+"/displayname", nil, nil, &r)
	return r.DisplayName, err
}

func (c *client) join(ctx context.Context, room string) error {
	return c.do(ctx, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(room), nil, struct{}{}, nil)
}

func (c *client) leave(ctx context.Context, room string) error {
	return c.do(ctx, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/leave", nil, struct{}{}, nil)
}

// send puts one m.room.message event; txn deduplicates it.
func (c *client) send(ctx context.Context, room, txn string, content any) (string, error) {
	var r struct {
		EventID string `json:"event_id"`
	}
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/send/m.room.message/" + url.PathEscape(txn)
	if err := c.do(ctx, http.MethodPut, path, nil, content, &r); err != nil {
		return "", err
	}
	return r.EventID, nil
}

// syncFilter keeps /sync to what herald handles: room messages and
// stickers, encryption and membership, no presence, account data or receipts.
const syncFilter = `{"presence":{"types":[]},"account_data":{"types":[]},` +
	`"room":{"timeline":{"types":["m.room.message","m.sticker","m.room.encrypted","m.room.encryption","m.room.member"],"limit":100},` +
	`"state":{"types":["m.room.encryption","m.room.member"],"lazy_load_members":true},` +
	`"ephemeral":{"types":[]},"account_data":{"types":[]}}}`

func (c *client) sync(ctx context.Context, since string, timeout time.Duration) (*syncResponse, error) {
	q := url.Values{"filter": {syncFilter}, "timeout": {strconv.FormatInt(timeout.Milliseconds(), 10)}}
	if since != "" {
		q.Set("since", since)
	}
	var r syncResponse
	if err := c.do(ctx, http.MethodGet, "/_matrix/client/v3/sync", q, nil, &r); err != nil {
		return nil, err
	}
	if r.NextBatch == "" {
		return nil, &transportError{Written: true, Err: errors.New("sync answered without next_batch")}
	}
	return &r, nil
}
