// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// SendClient calls the send API of a running herald: on its admin socket,
// or on api.listen with a bearer token.
type SendClient struct {
	// Socket is the admin socket; used when URL is empty.
	Socket string
	// URL is the base URL of api.listen (http://127.0.0.1:8090).
	URL string
	// Token is the bearer token for URL.
	Token string
}

func (c *SendClient) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	base, client := "http://herald", AdminClient(c.Socket, 0)
	if c.URL != "" {
		base, client = strings.TrimRight(c.URL, "/"), &http.Client{}
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.URL != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := client.Do(req)
	if err != nil {
		if c.URL == "" && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)) {
			return 0, exitErrf(ExitRunning, "herald is not running (no admin socket at %s)", c.Socket)
		}
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		var e apiError
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return resp.StatusCode, fmt.Errorf("HTTP %d: %s", resp.StatusCode, e.Error)
		}
		return resp.StatusCode, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}

// Send posts m. A 503 (herald restarting) or a connection that failed is
// tried again with the same idempotency key until ctx ends, so give m one.
func (c *SendClient) Send(ctx context.Context, m SendMessage) (SendAccepted, error) {
	return c.post(ctx, "/v1/messages", m, m.IdempotencyKey != "")
}

// Turn posts m to POST /v1/turns, retried like Send.
func (c *SendClient) Turn(ctx context.Context, m TurnMessage) (SendAccepted, error) {
	return c.post(ctx, "/v1/turns", m, m.IdempotencyKey != "")
}

func (c *SendClient) post(ctx context.Context, path string, m any, retry bool) (SendAccepted, error) {
	var acc SendAccepted
	for {
		code, err := c.do(ctx, http.MethodPost, path, m, &acc)
		if err == nil || !retry || code != 0 && code != http.StatusServiceUnavailable {
			return acc, err
		}
		select {
		case <-ctx.Done():
			return acc, fmt.Errorf("send: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Status reads the delivery status of message id (kind "messages") or of
// turn id (kind "turns").
func (c *SendClient) Status(ctx context.Context, kind, id string) (SendStatus, error) {
	var st SendStatus
	_, err := c.do(ctx, http.MethodGet, "/v1/"+kind+"/"+id, nil, &st)
	return st, err
}

// Wait polls Status until it is no longer pending or ctx ends.
func (c *SendClient) Wait(ctx context.Context, kind, id string) (SendStatus, error) {
	for {
		st, err := c.Status(ctx, kind, id)
		if err == nil && st.Status != "pending" {
			return st, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				return st, fmt.Errorf("message %s still %s: %w", id, st.Status, ctx.Err())
			}
			return st, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}
