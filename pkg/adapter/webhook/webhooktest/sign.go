// SPDX-License-Identifier: Apache-2.0

package webhooktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/webhook/internal/signature"
)

// Message is herald's inbound JSON contract, for building request bodies.
type Message struct {
	ConversationID string `json:"conversation_id,omitempty"`
	UserID         string `json:"user_id,omitempty"`
	Text           string `json:"text,omitempty"`
	ReplyURL       string `json:"reply_url,omitempty"`
	UserName       string `json:"user_name,omitempty"`
	ThreadID       string `json:"thread_id,omitempty"`
	ChatType       string `json:"chat_type,omitempty"`
}

// JSON encodes m.
func (m Message) JSON() []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // strings only: cannot happen
	}
	return b
}

// SignGitHub returns the X-Hub-Signature-256 value for body.
func SignGitHub(secret string, body []byte) string {
	return signature.SignGitHub([]byte(secret), body)
}

// SignStandard returns the webhook-signature value for a Standard Webhooks
// request with the given id and timestamp. secret is "whsec_<base64>" or raw.
func SignStandard(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := signature.StandardKey([]byte(secret))
	if err != nil {
		return "", err
	}
	return signature.SignStandard(key, id, signature.Timestamp(ts), body), nil
}

// NewRequest builds a Standard Webhooks POST to url: webhook-id
// deliveryID (a random msg_ id when empty), webhook-timestamp now and
// webhook-signature with secret. With an empty secret the request is
// unsigned and deliveryID, if any, goes in Idempotency-Key instead.
func NewRequest(ctx context.Context, url, secret string, body []byte, deliveryID string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if secret == "" {
		if deliveryID != "" {
			req.Header.Set("Idempotency-Key", deliveryID)
		}
		return req, nil
	}
	if deliveryID == "" {
		deliveryID = NewID()
	}
	ts := time.Now()
	sig, err := SignStandard(secret, deliveryID, ts, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set(signature.HeaderID, deliveryID)
	req.Header.Set(signature.HeaderTimestamp, signature.Timestamp(ts))
	req.Header.Set(signature.HeaderSignature, sig)
	return req, nil
}

// NewGitHubRequest builds a POST signed the GitHub way: X-Hub-Signature-256
// and, when deliveryID is not empty, X-GitHub-Delivery.
func NewGitHubRequest(ctx context.Context, url, secret string, body []byte, deliveryID string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(signature.HeaderGitHub, SignGitHub(secret, body))
	if deliveryID != "" {
		req.Header.Set("X-GitHub-Delivery", deliveryID)
	}
	return req, nil
}

// NewID returns a random Standard Webhooks style message id.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "msg_" + hex.EncodeToString(b[:])
}

// Response is what herald answered to a Post.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	// ID is the "id" of a 202 answer, Error the "error" of a failure.
	ID    string
	Error string
}

// client never keeps connections alive, so tests checking for leaked
// goroutines need not close anything.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// Post sends body to url as NewRequest builds it and returns the answer.
func Post(ctx context.Context, url, secret string, body []byte, deliveryID string) (*Response, error) {
	req, err := NewRequest(ctx, url, secret, body, deliveryID)
	if err != nil {
		return nil, err
	}
	return Do(req)
}

// PostGitHub sends body to url as NewGitHubRequest builds it.
func PostGitHub(ctx context.Context, url, secret string, body []byte, deliveryID string) (*Response, error) {
	req, err := NewGitHubRequest(ctx, url, secret, body, deliveryID)
	if err != nil {
		return nil, err
	}
	return Do(req)
}

// Do sends req and reads the answer.
func Do(req *http.Request) (*Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("webhooktest: reading answer: %w", err)
	}
	r := &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: b}
	var v struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &v) == nil {
		r.ID, r.Error = v.ID, v.Error
	}
	return r, nil
}
