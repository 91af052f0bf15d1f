// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

const (
	// maxReplyBytes bounds the reply text of one turn.
	maxReplyBytes = 4 << 20
	// maxJSONBytes bounds a non-streaming response body.
	maxJSONBytes = 8 << 20
	// maxErrorBody bounds what is read of an error response.
	maxErrorBody = 64 << 10
)

// client talks to an OpenAI-compatible chat completions endpoint; kind hermes
// adds X-Hermes-Session-Id and relies on the server's history.
type client struct {
	hermes   bool
	endpoint string // …/v1/chat/completions
	base     string // agent.url without /v1 and trailing slash
	mode     hermesMode
	connect  time.Duration
	// pollInterval is how often the runs backend asks a run's status when
	// it cannot follow its events. A field so tests can shorten it.
	pollInterval time.Duration
	// statusEvery is how long a run's event stream may go without an event
	// before herald checks the run's status (30 s, Hermes' keepalive
	// interval). A field so tests can shorten it.
	statusEvery time.Duration
	model       string
	key         secret.Value
	http        *http.Client
	log         *logrus.Entry

	firstToken, idle, total time.Duration
	maxAttempts             int

	// Backoff between attempts: base doubled per attempt up to max, with
	// jitter; a server's Retry-After is used instead, up to retryAfterMax.
	// Fields so tests can shorten them.
	backoffBase, backoffMax, retryAfterMax time.Duration
}

func newClient(cfg config.Agent, log *logrus.Entry) (*client, error) {
	endpoint, err := endpointURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("agent: url: %w", err)
	}
	connect := orDefault(cfg.ConnectTimeout, 10*time.Second)
	c := &client{
		hermes:        cfg.Kind == "hermes",
		endpoint:      endpoint,
		base:          strings.TrimSuffix(endpoint, "/v1/chat/completions"),
		mode:          hermesMode{force: cfg.HermesAPI},
		connect:       connect,
		pollInterval:  2 * time.Second,
		statusEvery:   30 * time.Second,
		model:         cfg.Model,
		log:           log,
		firstToken:    orDefault(cfg.FirstTokenTimeout, 120*time.Second),
		idle:          orDefault(cfg.IdleTimeout, 120*time.Second),
		total:         orDefault(cfg.TotalTimeout, 30*time.Minute),
		maxAttempts:   cfg.MaxAttempts,
		backoffBase:   500 * time.Millisecond,
		backoffMax:    10 * time.Second,
		retryAfterMax: 60 * time.Second,
	}
	if c.model == "" {
		c.model = "hermes-agent"
	}
	if c.maxAttempts < 1 {
		c.maxAttempts = 3
	}
	if !cfg.Key.IsZero() {
		if c.key, err = cfg.Key.Read(); err != nil {
			return nil, fmt.Errorf("agent: key: %w", err)
		}
	} else if c.hermes {
		return nil, errors.New("agent: key: required for kind hermes (the API server needs API_SERVER_KEY)")
	}
	c.http = &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   connect,
			ResponseHeaderTimeout: connect,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   64, // up to dispatch.max_concurrent_turns turns at once
			IdleConnTimeout:       90 * time.Second,
		},
		// A POST redirected to a GET would lose the turn; a redirect means
		// agent.url is wrong, so it is reported, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// endpointURL accepts the base URL with or without a trailing /v1.
func endpointURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL", base)
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/v1")
	u.Path = p + "/v1/chat/completions"
	u.RawPath = ""
	return u.String(), nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (c *client) KeepsHistory() bool { return c.hermes }

// CloseIdleConnections closes kept-alive connections to the backend.
func (c *client) CloseIdleConnections() { c.http.CloseIdleConnections() }

type chatRequest struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	Stream   bool      `json:"stream"`
}

func (c *client) Complete(ctx context.Context, req Request, ev Events) (string, error) {
	if err := c.check(req); err != nil {
		return "", fmt.Errorf("agent: %w", err)
	}
	if c.hermes {
		runs, err := c.useRuns(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return "", wrapCtx(ctx)
			}
			return "", fmt.Errorf("agent: capabilities: %w", err)
		}
		if runs {
			return c.completeRun(ctx, req, ev)
		}
	}
	body, err := json.Marshal(chatRequest{Model: c.model, Messages: req.Messages, Stream: true})
	if err != nil {
		return "", fmt.Errorf("agent: %w: %w", ErrRejected, err)
	}
	tctx, cancel := context.WithTimeoutCause(ctx, c.total, &TimeoutError{Which: "total", After: c.total})
	defer cancel()
	log := c.log.WithField("session", req.SessionID)
	start := time.Now()
	for attempt := 1; ; attempt++ {
		reply, accepted, err := c.attempt(tctx, req, body, ev)
		if err == nil {
			log.WithFields(logrus.Fields{"attempt": attempt, "bytes": len(reply), "took": time.Since(start).Round(time.Millisecond)}).Debug("agent turn done")
			return reply, nil
		}
		if ctx.Err() != nil {
			return "", wrapCtx(ctx)
		}
		if accepted || attempt >= c.maxAttempts || !(errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRateLimited)) {
			return "", c.fail(err, attempt)
		}
		wait := c.backoff(attempt, err)
		if dl, ok := tctx.Deadline(); ok && time.Until(dl) < wait {
			return "", fmt.Errorf("%w (not retried: the turn's deadline comes before the %v wait)", c.fail(err, attempt), wait.Round(time.Millisecond))
		}
		log.WithError(err).Warnf("agent attempt %d of %d failed; retrying in %v", attempt, c.maxAttempts, wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-tctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return "", wrapCtx(ctx)
			}
			return "", fmt.Errorf("agent: %w", context.Cause(tctx))
		}
	}
}

func (c *client) fail(err error, attempts int) error {
	if attempts > 1 {
		return fmt.Errorf("agent: %w (after %d attempts)", err, attempts)
	}
	return fmt.Errorf("agent: %w", err)
}

func (c *client) check(req Request) error {
	if len(req.Messages) == 0 {
		return fmt.Errorf("%w: no messages", ErrRejected)
	}
	if c.hermes && req.SessionID == "" {
		return fmt.Errorf("%w: kind hermes needs a session id", ErrRejected)
	}
	if strings.ContainsAny(req.SessionID, "\r\n\x00") {
		return fmt.Errorf("%w: session id contains CR, LF or NUL", ErrRejected)
	}
	if strings.ContainsAny(req.IdempotencyKey, "\r\n\x00") {
		return fmt.Errorf("%w: idempotency key contains CR, LF or NUL", ErrRejected)
	}
	return nil
}

// backoff returns the wait before attempt+1.
func (c *client) backoff(attempt int, err error) time.Duration {
	var he *HTTPError
	if errors.As(err, &he) && he.RetryAfter > 0 {
		d := min(he.RetryAfter, c.retryAfterMax)
		return d + rand.N(d/10+1) // spread the herd a little
	}
	return adapter.Backoff{Min: c.backoffBase, Max: c.backoffMax}.Delay(attempt - 1)
}

// attempt sends the request once. accepted reports that a 2xx response
// arrived, after which the request must not be repeated.
func (c *client) attempt(ctx context.Context, req Request, body []byte, ev Events) (reply string, accepted bool, err error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	firstToken := time.AfterFunc(c.firstToken, func() {
		cancel(&TimeoutError{Which: "first token", After: c.firstToken})
	})
	defer firstToken.Stop()

	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", false, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	h := hreq.Header
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "text/event-stream")
	h.Set("User-Agent", "herald")
	if !c.key.IsZero() {
		h.Set("Authorization", "Bearer "+c.key.Reveal())
	}
	if c.hermes {
		h.Set("X-Hermes-Session-Id", req.SessionID)
		if req.SessionKey != "" {
			h.Set("X-Hermes-Session-Key", MemoryScope(req.SessionKey))
		}
	}
	if req.IdempotencyKey != "" {
		h.Set("Idempotency-Key", req.IdempotencyKey)
	}

	resp, err := c.http.Do(hreq)
	if err != nil {
		if actx.Err() != nil {
			return "", false, context.Cause(actx)
		}
		return "", false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := c.httpError(resp)
		if actx.Err() != nil {
			err = context.Cause(actx)
		}
		return "", false, err
	}

	idle := time.AfterFunc(c.idle, func() {
		cancel(&TimeoutError{Which: "idle", After: c.idle})
	})
	defer idle.Stop()
	r := &activityReader{r: resp.Body, t: idle, d: c.idle}
	s := &stream{ev: ev, onContent: func() { firstToken.Stop() }}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch mt {
	case "text/event-stream", "":
		err = s.readSSE(r)
	case "application/json":
		err = s.readJSON(r)
	default:
		err = fmt.Errorf("%w: unexpected Content-Type %q (is agent.url an OpenAI-compatible server?)", ErrProtocol, mt)
	}
	if err != nil && actx.Err() != nil {
		err = context.Cause(actx)
	}
	if err != nil {
		var se *serverError
		if errors.As(err, &se) {
			se.msg = sanitize(se.msg, c.key.Reveal())
		}
		return "", true, err
	}
	return s.reply.String(), true, nil
}

// httpError reads a non-2xx response.
func (c *client) httpError(resp *http.Response) error {
	e := &HTTPError{Status: resp.StatusCode}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.Message = sanitize(fmt.Sprintf("redirect to %q; check agent.url", resp.Header.Get("Location")), c.key.Reveal())
		return e
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e.Message = sanitize(errorText(b), c.key.Reveal())
	return e
}

// parseRetryAfter reads delay-seconds or an HTTP-date; 0 if absent or
// invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > 24*3600 {
			n = 24 * 3600
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// errorText extracts the message of an error body: OpenAI's
// {"error":{"message"}}, {"error":"…"}, {"message"}, {"detail"}, or the
// text itself.
func errorText(b []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(b, &v) == nil {
		if m := errorObject(v.Error); m != "" {
			return m
		}
		if v.Message != "" {
			return v.Message
		}
		var d string
		if json.Unmarshal(v.Detail, &d) == nil && d != "" {
			return d
		}
	}
	return string(b)
}

// errorObject reads an "error" member: a string or {"message","type","code"}.
func errorObject(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
	}
	if json.Unmarshal(raw, &o) == nil {
		msg := o.Message
		if code := strings.Trim(string(o.Code), `"`); code != "" && code != "null" {
			msg += " (" + code + ")"
		} else if o.Type != "" {
			msg += " (" + o.Type + ")"
		}
		if strings.TrimSpace(msg) != "" {
			return strings.TrimSpace(msg)
		}
	}
	return string(raw)
}

// activityReader restarts the idle timer whenever bytes arrive.
type activityReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.t.Reset(a.d)
	}
	return n, err
}

// serverError is an error the backend reported inside a 2xx response.
type serverError struct{ msg string }

func (e *serverError) Error() string { return "backend error: " + e.msg }
func (e *serverError) Unwrap() error { return ErrUnavailable }

// stream turns response chunks into reply text and events.
type stream struct {
	ev        Events
	onContent func() // called at the first content delta
	reply     strings.Builder
	content   bool // a content delta was seen
	role      bool // a role delta was seen
	finished  bool // a finish_reason was seen
}

// chunk is the part of a chat.completion(.chunk) herald reads.
type chunk struct {
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"delta"`
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Error json.RawMessage `json:"error"`
}

func (s *stream) readSSE(r io.Reader) error {
	sr := newSSEReader(r, maxEventBytes)
	for {
		e, err := sr.next()
		switch {
		case err == io.EOF:
			if s.finished {
				return nil
			}
			return fmt.Errorf("%w: stream ended without [DONE] or finish_reason", ErrUnavailable)
		case errors.Is(err, errSSETooLarge):
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		case err != nil:
			return fmt.Errorf("%w: reading stream: %w", ErrUnavailable, err)
		}
		if e.Comment {
			s.ev.progress(ProgressKeepalive)
			continue
		}
		switch e.Type {
		case "", "message", "error":
		case eventToolProgress:
			// A running tool is the agent at work, not a silent backend:
			// it satisfies the first-token timeout (tool runs before the
			// first word are routine); the idle timeout still applies.
			if s.onContent != nil {
				s.onContent()
			}
			s.ev.progress(ProgressTool)
			continue
		default:
			continue // approval.request and whatever comes next
		}
		data := bytes.TrimSpace(e.Data)
		if len(data) == 0 {
			continue
		}
		if string(data) == "[DONE]" {
			return nil
		}
		var ch chunk
		if err := json.Unmarshal(data, &ch); err != nil {
			if e.Type == "error" { // "event: error" with a plain-text message
				return &serverError{msg: string(data)}
			}
			return fmt.Errorf("%w: bad chunk: %w", ErrProtocol, err)
		}
		if m := errorObject(ch.Error); m != "" {
			return &serverError{msg: m}
		}
		for i := range ch.Choices {
			c := &ch.Choices[i]
			if c.Index != 0 {
				continue
			}
			if c.Delta.Role != "" && !s.role {
				s.role = true
				s.ev.progress(ProgressRole)
			}
			if err := s.add(c.Delta.Content); err != nil {
				return err
			}
			if c.FinishReason != "" {
				s.finished = true
			}
		}
	}
}

func (s *stream) readJSON(r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, maxJSONBytes+1))
	if err != nil {
		return fmt.Errorf("%w: reading response: %w", ErrUnavailable, err)
	}
	if len(b) > maxJSONBytes {
		return fmt.Errorf("%w: response larger than %d bytes", ErrProtocol, maxJSONBytes)
	}
	var ch chunk
	if err := json.Unmarshal(b, &ch); err != nil {
		return fmt.Errorf("%w: bad response: %w", ErrProtocol, err)
	}
	if m := errorObject(ch.Error); m != "" {
		return &serverError{msg: m}
	}
	for i := range ch.Choices {
		if ch.Choices[i].Index == 0 {
			return s.add(ch.Choices[i].Message.Content)
		}
	}
	return fmt.Errorf("%w: response without choices", ErrProtocol)
}

func (s *stream) add(text string) error {
	if text == "" {
		return nil
	}
	if s.reply.Len()+len(text) > maxReplyBytes {
		return fmt.Errorf("%w: reply larger than %d bytes", ErrProtocol, maxReplyBytes)
	}
	if !s.content {
		s.content = true
		if s.onContent != nil {
			s.onContent()
		}
	}
	s.reply.WriteString(text)
	s.ev.delta(text)
	return nil
}

// Interface guards
var _ Agent = (*client)(nil)
