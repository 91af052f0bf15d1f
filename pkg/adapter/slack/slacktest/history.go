// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// History: conversations.history and conversations.replies over the
// messages posted with chat.postMessage, with their metadata.
//
// As in Slack, both take form parameters (a form-encoded POST or a GET
// query), return messages with metadata only when include_all_metadata is
// true, filter by oldest and latest (exclusive unless inclusive is true),
// and page with limit and an opaque cursor (has_more,
// response_metadata.next_cursor). conversations.history lists the top level
// of a channel, newest first; conversations.replies lists a thread oldest
// first, its parent first. The fake knows only the messages posted to it:
// a thread under a user's message lists its replies without the parent.

// Page sizes: Slack's defaults and maxima.
const (
	defaultPageLimit = 100
	maxPageLimit     = 999
)

// nextTSLocked returns a new message ts: the current time in Slack's
// "seconds.microseconds" form, unique and increasing.
func (s *Server) nextTSLocked() string {
	us := time.Now().UnixMicro()
	if us <= s.lastTS {
		us = s.lastTS + 1
	}
	s.lastTS = us
	return formatTS(us)
}

func formatTS(us int64) string { return fmt.Sprintf("%d.%06d", us/1e6, us%1e6) }

// parseTS reads a Slack ts into microseconds.
func parseTS(ts string) (int64, bool) {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s < 0 || len(frac) > 6 {
		return 0, false
	}
	var us int64
	if frac != "" {
		f, err := strconv.ParseInt((frac + "000000")[:6], 10, 64)
		if err != nil || f < 0 {
			return 0, false
		}
		us = f
	}
	return s*1e6 + us, true
}

// parseMetadata reads chat.postMessage's metadata: an object, or (as form
// parameters send it) a string holding one. Absent is fine; present, it
// needs an event_type and an event_payload object.
func parseMetadata(raw json.RawMessage) (*Metadata, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		raw = json.RawMessage(str)
	}
	var md Metadata
	if err := json.Unmarshal(raw, &md); err != nil || md.EventType == "" || md.EventPayload == nil {
		return nil, false
	}
	return &md, true
}

// listParams are the parameters both methods share.
type listParams struct {
	channel   string
	oldest    int64
	latest    int64 // 0: now
	inclusive bool
	limit     int
	offset    int
	metadata  bool
}

// readList parses the parameters, answering the error itself when they are
// bad.
func (s *Server) readList(w http.ResponseWriter, r *http.Request) (listParams, bool) {
	var p listParams
	if !s.auth(w, r, s.opts.BotToken, s.opts.AppToken) {
		return p, false
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_form_data"})
		return p, false
	}
	bad := func() (listParams, bool) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_arguments"})
		return p, false
	}
	p.channel = r.Form.Get("channel")
	if p.channel == "" {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "channel_not_found"})
		return p, false
	}
	var ok bool
	if v := r.Form.Get("oldest"); v != "" {
		if p.oldest, ok = parseTS(v); !ok {
			return bad()
		}
	}
	if v := r.Form.Get("latest"); v != "" {
		if p.latest, ok = parseTS(v); !ok {
			return bad()
		}
	}
	p.inclusive = r.Form.Get("inclusive") == "true" || r.Form.Get("inclusive") == "1"
	p.metadata = r.Form.Get("include_all_metadata") == "true" || r.Form.Get("include_all_metadata") == "1"
	p.limit = defaultPageLimit
	if v := r.Form.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return bad()
		}
		p.limit = min(max(n, 1), maxPageLimit)
	}
	if c := r.Form.Get("cursor"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "next:"))
		if err != nil || !strings.HasPrefix(c, "next:") || n < 0 {
			writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_cursor"})
			return p, false
		}
		p.offset = n
	}
	return p, true
}

// inRange applies oldest, latest and inclusive to a message ts.
func (p listParams) inRange(ts string) bool {
	us, _ := parseTS(ts)
	if p.oldest > 0 && (us < p.oldest || us == p.oldest && !p.inclusive) {
		return false
	}
	if p.latest > 0 && (us > p.latest || us == p.latest && !p.inclusive) {
		return false
	}
	return true
}

// page answers one page of msgs (already filtered and ordered).
func (s *Server) page(w http.ResponseWriter, p listParams, msgs []Message) {
	if p.offset > len(msgs) {
		p.offset = len(msgs)
	}
	end := min(p.offset+p.limit, len(msgs))
	out := make([]map[string]any, 0, end-p.offset)
	for _, m := range msgs[p.offset:end] {
		e := map[string]any{"type": "message", "user": s.opts.BotUserID, "bot_id": "BBOT", "text": m.Text, "ts": m.TS}
		if m.ThreadTS != "" {
			e["thread_ts"] = m.ThreadTS
		}
		if p.metadata && m.Metadata != nil {
			e["metadata"] = m.Metadata
		}
		out = append(out, e)
	}
	next := ""
	if end < len(msgs) {
		next = "next:" + strconv.Itoa(end)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ok": true, "messages": out, "has_more": next != "",
		"response_metadata": map[string]any{"next_cursor": next},
	})
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	p, ok := s.readList(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	var msgs []Message
	for i := len(s.msgs) - 1; i >= 0; i-- { // newest first
		m := s.msgs[i]
		if m.Channel == p.channel && (m.ThreadTS == "" || m.ThreadTS == m.TS) && p.inRange(m.TS) {
			msgs = append(msgs, *m)
		}
	}
	s.mu.Unlock()
	s.page(w, p, msgs)
}

func (s *Server) handleReplies(w http.ResponseWriter, r *http.Request) {
	p, ok := s.readList(w, r)
	if !ok {
		return
	}
	ts := r.Form.Get("ts")
	if _, valid := parseTS(ts); !valid {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_arguments"})
		return
	}
	s.mu.Lock()
	var msgs []Message
	for _, m := range s.msgs { // oldest first, the parent before its replies
		if m.Channel == p.channel && (m.TS == ts || m.ThreadTS == ts) && p.inRange(m.TS) {
			msgs = append(msgs, *m)
		}
	}
	s.mu.Unlock()
	s.page(w, p, msgs)
}
