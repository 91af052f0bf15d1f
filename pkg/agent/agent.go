// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/config"
)

// Message roles.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one entry of the conversation sent to the backend.
type Message struct {
	Role    string `json:"role"` // RoleSystem, RoleUser or RoleAssistant
	Content string `json:"content"`
	// Parts, when set, is sent as the message's content instead of Content
	// (OpenAI content parts: text and image_url) to chat-completions
	// backends. Content must then hold the same text with a note per image,
	// for backends (and history) that take text only. A message without
	// Parts is encoded exactly as before.
	Parts []ContentPart `json:"-"`
}

// ContentPart is one part of a multi-part message content.
type ContentPart struct {
	Type     string    `json:"type"` // "text" or "image_url"
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
}

// ImageURL is an image_url part's value: an http(s) or data: URL.
type ImageURL struct {
	URL string `json:"url"`
}

// MarshalJSON encodes Content as a string, or Parts as an array when set.
func (m Message) MarshalJSON() ([]byte, error) {
	if len(m.Parts) == 0 {
		type plain Message
		return json.Marshal(plain(m))
	}
	return json.Marshal(struct {
		Role    string        `json:"role"`
		Content []ContentPart `json:"content"`
	}{m.Role, m.Parts})
}

// Request is one agent turn.
type Request struct {
	// SessionID keys the conversation (herald's session key plus its
	// generation, so /new starts afresh). Sent as X-Hermes-Session-Id for
	// kind hermes, which must have one; it must not contain CR, LF or NUL.
	SessionID string
	// Messages is what the backend sees. When the Agent KeepsHistory, only
	// the new user message; otherwise the system prompt, the earlier
	// messages and the new one. The caller builds it.
	Messages []Message
	// IdempotencyKey is sent as Idempotency-Key, the same on every retry,
	// so a backend that got the request twice runs the turn once. Optional
	// for chat completions; the Runs API needs it to re-attach (1 to 255
	// visible ASCII characters).
	IdempotencyKey string
	// SessionKey is the stable memory scope of the conversation (platform,
	// chat and, in group sessions, user), unchanged by /new. Kind hermes
	// sends it as X-Hermes-Session-Key (see MemoryScope). Optional.
	SessionKey string
	// Run is the backend run an earlier herald instance started for this
	// turn (what Events.RunStarted was given), nil if none. The runs
	// backend re-attaches to it instead of creating a run.
	Run *Run
}

// Run links a turn to the Hermes run that carries it. The caller stores it
// when Events.RunStarted reports it and passes it back in Request.Run after
// a restart.
type Run struct {
	// ID is the run id ("run_…").
	ID string
	// Body is the exact POST /v1/runs body. If the backend has forgotten
	// the run, it is sent again with the same Idempotency-Key, which the
	// server answers with the original run while it still knows the key.
	Body []byte
}

// Progress kinds passed to Events.Progress.
const (
	ProgressRole      = "role"      // the backend started answering (first chunk carries delta.role)
	ProgressKeepalive = "keepalive" // a ":" comment line on the stream
	ProgressTool      = "tool"      // a hermes.tool.progress event: a tool is running
)

// Events receives what happens during a turn. Both callbacks are optional and
// are called synchronously from the goroutine running Complete, so they must
// not block for long: a slow callback delays reading the stream.
type Events struct {
	// Delta receives streamed reply text in order; the concatenation of all
	// deltas equals the reply Complete returns. A backend that does not
	// stream gives one delta with the whole reply.
	Delta func(text string)
	// Progress reports signs of life that are not reply text (Progress*
	// constants), for typing indicators and liveness checks.
	Progress func(kind string)
	// RunStarted is called by the runs backend as soon as the backend
	// accepted (or replayed) the run and before any of its events is
	// read. The caller stores r durably before returning; an error is
	// logged and the turn goes on (the Idempotency-Key still finds the run).
	RunStarted func(r Run) error
	// Approval is called by the runs backend when the run waits for a
	// human decision on a tool call (from the approval.request event, or
	// from the run's status when herald re-attached), and again with
	// Resolved set once the decision was recorded. The caller asks the
	// user and answers with the agent's Approve method; the turn goes on
	// waiting. Nil: herald answers deny at once. It is called once per
	// request id and turn, synchronously: it must not block for long.
	Approval func(a Approval)
}

func (e Events) delta(s string) {
	if e.Delta != nil {
		e.Delta(s)
	}
}

func (e Events) progress(kind string) {
	if e.Progress != nil {
		e.Progress(kind)
	}
}

// Agent runs agent turns. Implementations are safe for concurrent use.
type Agent interface {
	// Complete runs one turn and returns the full reply text (possibly
	// empty). It returns as soon as ctx ends, with ctx.Err() wrapped; no
	// goroutine outlives the call. See the package doc for the errors.
	Complete(ctx context.Context, req Request, ev Events) (string, error)
	// KeepsHistory reports whether the backend remembers the conversation
	// by Request.SessionID, so the caller sends only the new user message.
	KeepsHistory() bool
}

// Sentinel errors; see the package doc for when each is returned.
var (
	ErrRateLimited = errors.New("rate limited")
	ErrUnavailable = errors.New("backend unavailable")
	ErrRejected    = errors.New("request rejected")
	ErrTimeout     = errors.New("timeout")
	ErrProtocol    = errors.New("protocol error")
	// ErrStopRequested is the cancellation cause (context.WithCancelCause)
	// with which the caller says the user stopped the turn (/stop, or the
	// interrupt busy policy): the runs backend then stops the run. Any
	// other cancellation (shutdown) only detaches from the run, which goes
	// on executing and is re-attached by the next instance.
	ErrStopRequested = errors.New("stop requested")
)

// HTTPError is an unsuccessful HTTP status from the backend. It unwraps to
// ErrRateLimited (429), ErrUnavailable (408, 5xx) or ErrRejected (others).
type HTTPError struct {
	Status int
	// Message is the server's error message (sanitised, shortened).
	Message string
	// RetryAfter is the server's Retry-After, 0 if none.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	if t := http.StatusText(e.Status); t != "" {
		s += " " + t
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *HTTPError) Unwrap() error {
	switch {
	case e.Status == http.StatusTooManyRequests:
		return ErrRateLimited
	case e.Status == http.StatusRequestTimeout || e.Status >= 500:
		return ErrUnavailable
	default:
		return ErrRejected
	}
}

// TimeoutError says which of the agent timeouts fired. It unwraps to
// ErrTimeout.
type TimeoutError struct {
	// Which is "first token", "idle" or "total".
	Which string
	After time.Duration
}

func (e *TimeoutError) Error() string { return fmt.Sprintf("%s timeout after %v", e.Which, e.After) }

func (e *TimeoutError) Unwrap() error { return ErrTimeout }

// New builds the agent for cfg.Kind. It reads the key (cfg.Key) but does no
// network I/O. Zero durations and attempts take the documented defaults, so a
// config.Agent built by hand in a test works. log may be nil.
//
// The returned Agent also has CloseIdleConnections() for kinds that use the
// network; the daemon calls it after the last turn ended.
func New(cfg config.Agent, log *logrus.Entry) (Agent, error) {
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = logrus.NewEntry(l)
	}
	switch cfg.Kind {
	case "", "echo":
		return &echo{delay: cfg.Echo.WordDelay}, nil
	case "openai", "hermes":
		return newClient(cfg, log)
	default:
		return nil, fmt.Errorf("agent: unknown kind %q (known: echo, openai, hermes)", cfg.Kind)
	}
}

// lastUser returns the content of the last user message.
func lastUser(msgs []Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == RoleUser {
			return msgs[i].Content
		}
	}
	return ""
}

// wrapCtx wraps the caller's context error, adding its cause when the caller
// gave one (context.WithCancelCause).
func wrapCtx(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("agent: %w: %w", err, cause)
	}
	return fmt.Errorf("agent: %w", err)
}

// sanitize shortens a server-provided message and removes control
// characters and the key, so an error string is one safe log line.
func sanitize(s string, key string) string {
	if key != "" {
		s = strings.ReplaceAll(s, key, "[redacted]")
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	const max = 300
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
