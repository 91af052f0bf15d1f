// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// maxEventLine bounds one line of the event stream (one event's JSON).
const maxEventLine = 4 << 20

// Reasons counted with Metrics.Rejected.
const (
	reasonMalformed  = "malformed"
	reasonNotMessage = "not_a_message"
	reasonNoText     = "unsupported"
	reasonInvalid    = "invalid"
)

var (
	errIdle     = errors.New("event stream idle for longer than idle_timeout")
	errNoAnswer = errors.New("no answer within request_timeout")
)

// intake holds the event stream open, reopening it with backoff.
func (a *Adapter) intake(ctx context.Context, inbox adapter.Inbox) {
	adapter.Reconnect{Life: a.Life, Log: a.Log, Metrics: a.Metrics,
		Backoff: a.backoff}.
		Run(ctx, func(ctx context.Context) adapter.Attempt { return a.stream(ctx, inbox) })
}

// eventsPath is the event stream's path, with the account query of a
// multi-account daemon.
func (c *Config) eventsPath() string {
	if c.Account != "" {
		return "/api/v1/events?account=" + url.QueryEscape(c.Account)
	}
	return "/api/v1/events"
}

// stream opens GET /api/v1/events (with Last-Event-ID once an event was
// stored) and serves it until it ends, falls silent for idle_timeout or ctx
// ends.
func (a *Adapter) stream(ctx context.Context, inbox adapter.Inbox) adapter.Attempt {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, a.conf.baseURL()+a.conf.eventsPath(), nil)
	if err != nil {
		return adapter.Attempt{Err: fmt.Errorf("signal: events: %w", err), Fatal: true}
	}
	req.Header.Set("Accept", "text/event-stream")
	last := a.cursor.get(a.Log)
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	// Until the answer's headers: request_timeout; then idle_timeout,
	// renewed by every line (signal-cli writes a keepalive every 15 s).
	opening := time.AfterFunc(a.conf.RequestTimeout, func() { cancel(errNoAnswer) })
	resp, err := a.http.Do(req)
	opening.Stop()
	if err != nil {
		return adapter.Attempt{Err: fmt.Errorf("signal: events: daemon not answering: %w", streamErr(sctx, err))}
	}
	defer resp.Body.Close()
	if err := checkStream(resp, a.conf.Account); err != nil {
		return adapter.Attempt{Err: err, Fatal: resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed}
	}
	a.Life.Report(adapter.Status{Phase: adapter.PhaseConnected})
	a.Log.WithField("last_event_id", last).Debug("signal: event stream open")
	idle := time.AfterFunc(a.conf.IdleTimeout, func() { cancel(errIdle) })
	defer idle.Stop()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var ev sseEvent
	for sc.Scan() {
		idle.Reset(a.conf.IdleTimeout)
		if !ev.line(sc.Text()) {
			continue
		}
		idle.Stop() // storing may take a while; the stream is not idle
		err := a.handle(ctx, inbox, ev)
		ev = sseEvent{}
		if err != nil {
			return adapter.Attempt{Err: err, Healthy: true}
		}
		idle.Reset(a.conf.IdleTimeout)
	}
	err = sc.Err()
	if err == nil {
		err = io.EOF
	}
	return adapter.Attempt{Err: fmt.Errorf("signal: events: stream ended: %w", streamErr(sctx, err)), Healthy: true}
}

// streamErr prefers the reason the stream's context was cancelled for (the
// idle timer) over the transport's "context canceled".
func streamErr(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

// checkStream classifies the answer to GET /api/v1/events. signal-cli
// answers 400 when the account query names no account of a multi-account
// daemon.
func checkStream(resp *http.Response, account string) error {
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusBadRequest:
		return fmt.Errorf("signal: events: %w: the daemon has no account %q (400); register or link it, or fix account", adapter.ErrUnauthorized, account)
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return fmt.Errorf("signal: events: %d: url does not point at a signal-cli daemon started with --http", resp.StatusCode)
	default:
		return fmt.Errorf("signal: events: %w: HTTP %d", adapter.ErrTemporary, resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/event-stream" {
		return fmt.Errorf("signal: events: %w: answer is %q, not text/event-stream", adapter.ErrTemporary, resp.Header.Get("Content-Type"))
	}
	return nil
}

// sseEvent collects the fields of one Server-Sent Event.
type sseEvent struct {
	id, name string
	data     strings.Builder
	hasData  bool
}

// line adds one line of the stream; it reports true when the line ended an
// event that has data. Comment lines (signal-cli's keepalive ":") and
// unknown fields are ignored.
func (e *sseEvent) line(l string) bool {
	if l == "" {
		return e.hasData
	}
	if l[0] == ':' {
		return false
	}
	field, value, _ := strings.Cut(l, ":")
	value = strings.TrimPrefix(value, " ")
	switch field {
	case "id":
		e.id = value
	case "event":
		e.name = value
	case "data":
		if e.hasData {
			e.data.WriteByte('\n')
		}
		e.data.WriteString(value)
		e.hasData = true
	}
	return false
}

// handle turns one event into a stored message, or skips it. It returns an
// error only when the message could not be stored: the stream is then
// reopened from the last stored event, so the daemon sends it again.
func (a *Adapter) handle(ctx context.Context, inbox adapter.Inbox, ev sseEvent) error {
	if ev.name != "" && ev.name != "receive" {
		a.skip(ev.id, reasonNotMessage, "event "+ev.name)
		return nil
	}
	msg, reason, detail := a.inbound([]byte(ev.data.String()))
	if msg == nil {
		a.skip(ev.id, reason, detail)
		return nil
	}
	switch err := inbox.Deliver(ctx, msg); {
	case err == nil:
	case errors.Is(err, message.ErrInvalid):
		a.skip(ev.id, reasonInvalid, err.Error())
		return nil
	default:
		return fmt.Errorf("signal: storing event %s (%s): %w", ev.id, msg.EventID, err)
	}
	a.advance(ev.id)
	return nil
}

// advance records id as the last event handled, so that a reopened stream
// starts after it.
func (a *Adapter) advance(id string) {
	if id == "" {
		return
	}
	err := a.cursor.set(id)
	a.saves.Done(a.Log.WithField("file", adapter.StateWhere(a.cursor.states, cursorFile)), err, "signal", "the last event id",
		"after a restart the daemon sends its kept events again and the store deduplicates them")
}

func (a *Adapter) skip(id, reason, detail string) {
	a.Metrics.Rejected(reason)
	level := logrus.DebugLevel
	if reason == reasonMalformed || reason == reasonInvalid {
		level = logrus.WarnLevel
	}
	a.Log.WithFields(logrus.Fields{"event_id": id, "reason": reason}).Logf(level, "signal: event skipped: %s", detail)
	a.advance(id)
}

// receive is the data of a receive event: {"envelope":{…},"account":"…"}.
type receive struct {
	Envelope *envelope `json:"envelope"`
	Account  string    `json:"account"`
}

type envelope struct {
	Source       string       `json:"source"`
	SourceNumber string       `json:"sourceNumber"`
	SourceUUID   string       `json:"sourceUuid"`
	SourceName   string       `json:"sourceName"`
	Timestamp    int64        `json:"timestamp"`
	DataMessage  *dataMessage `json:"dataMessage"`
}

type dataMessage struct {
	Timestamp   int64             `json:"timestamp"`
	Message     *string           `json:"message"`
	GroupInfo   *groupInfo        `json:"groupInfo"`
	Mentions    []mention         `json:"mentions"`
	Attachments []json.RawMessage `json:"attachments"`
	// Kinds herald cannot pass to the agent; only their presence matters.
	Reaction   json.RawMessage `json:"reaction"`
	Sticker    json.RawMessage `json:"sticker"`
	Contacts   json.RawMessage `json:"contacts"`
	Payment    json.RawMessage `json:"payment"`
	PollCreate json.RawMessage `json:"pollCreate"`
}

type groupInfo struct {
	GroupID string `json:"groupId"`
}

type mention struct {
	Name   string `json:"name"`
	Number string `json:"number"`
	UUID   string `json:"uuid"`
	Start  int    `json:"start"`
	Length int    `json:"length"`
}

// inbound builds the message of one receive event, or says why there is
// none.
func (a *Adapter) inbound(data []byte) (*message.Inbound, string, string) {
	var r receive
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, reasonMalformed, "not JSON: " + err.Error()
	}
	env := r.Envelope
	if env == nil {
		return nil, reasonMalformed, "no envelope"
	}
	if env.DataMessage == nil {
		return nil, reasonNotMessage, "receipt, typing or sync message"
	}
	dm := env.DataMessage
	atts, unsupported, caption := dm.media()
	text := caption
	if dm.Message != nil && *dm.Message != "" {
		text = expandMentions(*dm.Message, dm.Mentions)
	}
	if text == "" && len(atts) == 0 && len(unsupported) == 0 {
		// A deletion, poll vote, pin or expiry-timer change: nothing to
		// answer.
		return nil, reasonNoText, "message without text, attachments or content herald answers"
	}
	key := firstOf(env.SourceUUID, env.Source, env.SourceNumber)
	sender := firstOf(env.SourceNumber, env.SourceUUID, env.Source)
	if key == "" || env.Timestamp <= 0 {
		return nil, reasonMalformed, "envelope without source or timestamp"
	}
	ts := strconv.FormatInt(env.Timestamp, 10)
	msg := &message.Inbound{
		Platform:    a.Name,
		EventID:     key + ":" + ts,
		ChatID:      sender,
		ChatType:    message.ChatDirect,
		SenderID:    sender,
		SenderName:  env.SourceName,
		MessageID:   ts,
		Text:        text,
		Attachments: atts,
		Unsupported: unsupported,
		ReceivedAt:  a.now(),
	}
	if g := dm.GroupInfo; g != nil {
		if g.GroupID == "" {
			return nil, reasonMalformed, "groupInfo without groupId"
		}
		msg.ChatID, msg.ChatType = GroupPrefix+g.GroupID, message.ChatGroup
	}
	if err := msg.Validate(); err != nil {
		return nil, reasonInvalid, err.Error()
	}
	return msg, "", ""
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// expandMentions replaces the placeholder (U+FFFC) Signal puts in the text
// for each mention with "@name", so that the agent sees who was meant.
// Start and length count UTF-16 code units.
func expandMentions(text string, ms []mention) string {
	if len(ms) == 0 || !strings.ContainsRune(text, '\uFFFC') {
		return text
	}
	ms = append([]mention(nil), ms...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Start > ms[j].Start })
	u := utf16.Encode([]rune(text))
	for _, m := range ms {
		if m.Start < 0 || m.Length < 0 || m.Start > len(u) || m.Length > len(u)-m.Start {
			continue
		}
		name := firstOf(m.Name, m.Number, m.UUID)
		rep := utf16.Encode([]rune("@" + name))
		u = append(u[:m.Start], append(rep, u[m.Start+m.Length:]...)...)
	}
	return string(utf16.Decode(u))
}
