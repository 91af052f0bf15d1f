// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// auth checks the bearer token: not_authed without one, invalid_auth for
// an unknown one, not_allowed_token_type for the other known token.
func (s *Server) auth(w http.ResponseWriter, r *http.Request, want, other string) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	code := ""
	switch {
	case !ok || tok == "":
		code = "not_authed"
	case tok == other:
		code = "not_allowed_token_type"
	case tok != want:
		code = "invalid_auth"
	}
	if code != "" {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code})
		return false
	}
	return true
}

func (s *Server) handleOpen(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.opens++
	s.notify()
	s.mu.Unlock()
	if s.fails(w, r, Open) || !s.auth(w, r, s.opts.AppToken, s.opts.BotToken) || s.rejects(w, r, Open) {
		return
	}
	s.mu.Lock()
	s.seq++
	ticket := fmt.Sprintf("tk-%d-%d", s.seq, time.Now().UnixNano())
	s.tickets[ticket] = true
	s.mu.Unlock()
	host := strings.TrimPrefix(s.http.URL, "http://")
	if _, ok := s.TakeIf(Upgrade, fakeserver.KindBlackhole); ok {
		host = s.hole.Addr().String()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ok":  true,
		"url": "ws://" + host + "/link/?ticket=" + ticket + "&app_id=A1",
	})
}

type postBody struct {
	Channel  string          `json:"channel"`
	Text     string          `json:"text"`
	ThreadTS string          `json:"thread_ts"`
	TS       string          `json:"ts"`
	Metadata json.RawMessage `json:"metadata"`
	Blocks   json.RawMessage `json:"blocks"`
}

// Block Kit limits the fake enforces (invalid_blocks past them).
const (
	maxSectionText = 3000
	maxActionID    = 255
	maxButtonValue = 2000
)

// parseButtons reads the section and actions blocks of a message: the
// buttons of its actions blocks, and whether every block is one the fake
// knows and within Slack's limits.
func parseButtons(raw json.RawMessage) ([]Button, bool) {
	if len(raw) == 0 {
		return nil, true
	}
	var blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"text"`
		Elements []struct {
			Type string `json:"type"`
			Text struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
			Style    string `json:"style"`
		} `json:"elements"`
	}
	if json.Unmarshal(raw, &blocks) != nil {
		return nil, false
	}
	var out []Button
	for _, b := range blocks {
		switch b.Type {
		case "section":
			if b.Text == nil || (b.Text.Type != "mrkdwn" && b.Text.Type != "plain_text") || len([]rune(b.Text.Text)) > maxSectionText {
				return nil, false
			}
		case "actions":
			ids := map[string]bool{}
			for _, e := range b.Elements {
				if e.Type != "button" || e.Text.Type != "plain_text" || e.Text.Text == "" || e.ActionID == "" ||
					len(e.ActionID) > maxActionID || len(e.Value) > maxButtonValue || ids[e.ActionID] ||
					(e.Style != "" && e.Style != "primary" && e.Style != "danger") {
					return nil, false
				}
				ids[e.ActionID] = true
				out = append(out, Button{Text: e.Text.Text, ActionID: e.ActionID, Value: e.Value, Style: e.Style})
			}
		default:
			return nil, false
		}
	}
	return out, true
}

func (s *Server) decodePost(w http.ResponseWriter, r *http.Request) (postBody, bool) {
	var b postBody
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_form_data"})
		return b, false
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_json"})
		return b, false
	}
	_, _ = io.Copy(io.Discard, r.Body) // net/http notices a client going away only once the body is read
	return b, true
}

func (s *Server) handlePost(w http.ResponseWriter, r *http.Request) {
	b, ok := s.decodePost(w, r)
	if !ok || !s.auth(w, r, s.opts.BotToken, s.opts.AppToken) || s.rejects(w, r, Post) {
		return
	}
	switch {
	case b.Channel == "":
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	case b.Text == "":
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "no_text"})
		return
	}
	md, ok := parseMetadata(b.Metadata)
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_metadata_format"})
		return
	}
	buttons, ok := parseButtons(b.Blocks)
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_blocks"})
		return
	}
	s.mu.Lock()
	s.seq++
	m := &Message{Channel: b.Channel, Text: b.Text, ThreadTS: b.ThreadTS, TS: s.nextTSLocked(), Metadata: md, Buttons: buttons}
	s.msgs = append(s.msgs, m)
	s.notify()
	s.mu.Unlock()
	if s.fails(w, r, Post) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request) {
	b, ok := s.decodePost(w, r)
	if !ok || !s.auth(w, r, s.opts.BotToken, s.opts.AppToken) || s.rejects(w, r, Update) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if m.Channel == b.Channel && m.TS == b.TS {
			m.Text = b.Text
			m.Edits++
			s.notify()
			s.mu.Unlock()
			failed := s.fails(w, r, Update)
			s.mu.Lock()
			if failed {
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "message_not_found"})
}
