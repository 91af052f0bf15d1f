// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/message"
)

// Adapter is the required interface of a platform adapter. See the package
// documentation for when each method is called and what it may block on.
type Adapter interface {
	// Start launches intake and returns promptly; see the package doc.
	Start(ctx context.Context, inbox Inbox) error
	// Send delivers one reply part. It returns the platform's id of the sent
	// message (empty if the platform has none) or an error classified with
	// the sentinels of this package.
	Send(ctx context.Context, msg *message.Outbound) (SendResult, error)
	// Stop ends intake and closes connections; it returns within 100 ms of
	// ctx ending.
	Stop(ctx context.Context) error
}

// SendResult describes a delivered message.
type SendResult struct {
	// MessageID is the platform's id of the message created, used by Editor.
	MessageID string
}

// Inbox is the core's side of intake.
type Inbox interface {
	// Deliver stores msg durably, deduplicated on (Platform, EventID), and
	// returns once it is safe to acknowledge msg to the platform. A message
	// seen before returns nil as well: acknowledge it again.
	//
	// An error means the message was not stored: do not acknowledge it.
	// ErrStopping means herald is shutting down and the platform should
	// redeliver to the next instance; an error wrapping message.ErrInvalid
	// means the event can never be stored (acknowledge it if the platform
	// would otherwise redeliver it forever, and log it).
	Deliver(ctx context.Context, msg *message.Inbound) error
}

// InboxFunc adapts a function to Inbox.
type InboxFunc func(ctx context.Context, msg *message.Inbound) error

// Deliver calls f.
func (f InboxFunc) Deliver(ctx context.Context, msg *message.Inbound) error { return f(ctx, msg) }

// Editor is implemented by adapters whose platform can edit a sent message;
// the core uses it for edit-in-place streaming of long turns.
type Editor interface {
	Edit(ctx context.Context, msg *message.Outbound, messageID string) error
}

// Typer is implemented by adapters that can show a typing indicator.
type Typer interface {
	Typing(ctx context.Context, msg *message.Outbound) error
}

// ButtonSender is implemented by adapters that show Outbound.Buttons as
// native buttons (a Telegram inline keyboard, Slack and Discord buttons)
// when SendsButtons reports true. A press is delivered as an Inbound whose
// Button is the pressed button's Data, whose SenderID is the user who
// pressed and whose EventID is the platform's id of the interaction; the
// adapter acknowledges the interaction to the platform within the
// platform's deadline, whatever the core makes of it. The core attaches
// buttons only for adapters that report true.
type ButtonSender interface {
	SendsButtons() bool
}

// Route is an HTTP endpoint an adapter serves on herald's HTTP listener.
type Route struct {
	// Pattern is a net/http.ServeMux pattern, e.g. "POST /hooks/ci".
	Pattern string
	Handler http.Handler
}

// RouteProvider is implemented by adapters that receive on herald's HTTP
// listener (the generic webhook). Routes is called once, after New and
// before Start; handlers must call the inbox given to Start and answer 503
// until Start has been called.
type RouteProvider interface {
	Routes() []Route
}

// Limiter is implemented by adapters whose platform limits message length.
// The core splits replies so that no part exceeds MaxMessageLen characters
// (Unicode code points). Without it the core uses DefaultMaxMessageLen.
type Limiter interface {
	MaxMessageLen() int
}

// Recoverer is implemented by adapters whose platform cannot deduplicate
// sends (no Type.DeduplicatesSends) but that can settle a send whose outcome is
// unknown: herald was killed while the send was on the wire, or the answer
// was lost (ErrAmbiguous). Without it the core never sends such a reply
// again, so the user sees it at most once.
type Recoverer interface {
	// Recover delivers msg, whose earlier sends (the first began at since)
	// may or may not have reached the platform. It either finds the message
	// an earlier send created and returns its id, or sends msg, or declines
	// with an error wrapping ErrNotResent. Other errors are classified as
	// Send's are; the core calls Recover again on a retryable one, and so
	// Recover must be safe to repeat.
	Recover(ctx context.Context, msg *message.Outbound, since time.Time) (SendResult, error)
}

// Prober is implemented by adapter configurations whose platform herald
// doctor can reach directly, without herald running: a local daemon such as
// signal-cli. Probe checks that it answers within ctx and says what
// answered, or returns what did not.
type Prober interface {
	Probe(ctx context.Context) (string, error)
}

// DefaultMaxMessageLen is the split size for adapters without Limiter.
const DefaultMaxMessageLen = 4000

// Phase is the connection state of an adapter as shown in STATUS= and by
// the admin endpoint.
type Phase string

const (
	// PhaseStarting: Start has been called, first connection not yet made.
	PhaseStarting Phase = "starting"
	// PhaseConnected: intake is live (websocket up, long poll answering,
	// HTTP route mounted).
	PhaseConnected Phase = "connected"
	// PhaseReconnecting: the connection failed; a retry is scheduled at
	// Status.RetryAt.
	PhaseReconnecting Phase = "reconnecting"
	// PhaseFatal: an error that retrying cannot fix (bad credentials,
	// forbidden, connection limit). The adapter has stopped retrying.
	PhaseFatal Phase = "fatal"
	// PhaseStopped: Stop has returned.
	PhaseStopped Phase = "stopped"
	// PhaseStandby: cluster mode, a leased platform whose intake does not
	// run on this node (another node holds its lease, or none yet). This
	// node still sends the replies of the conversations it owns. The core
	// reports it; adapters never do.
	PhaseStandby Phase = "standby"
)

// Status is an adapter's report of its connection state.
type Status struct {
	Phase Phase
	// RetryAt is when the next connection attempt happens (PhaseReconnecting).
	RetryAt time.Time
	// Err is the last error, if any. Must not contain secrets.
	Err error
	// Alarm marks a condition an operator must see even while connected,
	// e.g. Telegram 409 Conflict (another poller uses the token).
	Alarm string
}

// Env is what the core gives an adapter factory.
type Env struct {
	// Name is the instance name (the key under platforms:).
	Name string
	// Log is the adapter's logger, with component=adapter/<type> and
	// platform=<name> already set.
	Log *logrus.Entry
	// Report records a change of connection state. It never blocks and may
	// be called from any goroutine. Never nil.
	Report func(Status)
	// Metrics receives adapter events for the metrics endpoint. Never nil.
	Metrics Metrics
	// StateDir is a directory private to this platform instance
	// (<state_dir>/platforms/<name>, mode 0700), for the little state an
	// adapter must keep across restarts (Discord's session and sequence,
	// so the next instance resumes instead of losing what was sent in
	// between). Empty when there is none (tests); adapters then keep such
	// state in memory only.
	StateDir string
}

// Metrics is the subset of herald's metrics an adapter reports directly.
// Everything else (inbound and outbound counts, delivery retries) the core
// counts itself.
type Metrics interface {
	// Reconnect counts one reconnection attempt.
	Reconnect()
	// Rejected counts an inbound event refused at the edge: reason is a short
	// fixed label such as "bad_signature", "malformed", "too_large".
	Rejected(reason string)
}

// Defaults returns env with what a test may leave out filled in: a logger
// that discards, a Report and Metrics that do nothing. Define applies it,
// so adapters need not check for nil.
func (env Env) Defaults() Env {
	if env.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		env.Log = logrus.NewEntry(l)
	}
	if env.Report == nil {
		env.Report = func(Status) {}
	}
	if env.Metrics == nil {
		env.Metrics = NopMetrics{}
	}
	return env
}

// NopMetrics discards everything; for tests.
type NopMetrics struct{}

func (NopMetrics) Reconnect()      {}
func (NopMetrics) Rejected(string) {}
