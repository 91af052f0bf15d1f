// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
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

// fault answers with the next scripted fault, if any.
func (s *Server) fault(w http.ResponseWriter, q *[]Fault) bool {
	s.mu.Lock()
	if len(*q) == 0 {
		s.mu.Unlock()
		return false
	}
	f := (*q)[0]
	*q = (*q)[1:]
	s.mu.Unlock()
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	if f.Error == "" && status != http.StatusOK && status != http.StatusTooManyRequests {
		http.Error(w, http.StatusText(status), status)
		return true
	}
	code := f.Error
	if code == "" && status == http.StatusTooManyRequests {
		code = "ratelimited"
	}
	writeJSON(w, status, map[string]any{"ok": false, "error": code})
	return true
}

// hang holds a request until the client gives up or the server closes.
// The body is drained first: net/http only notices a client going away
// once the body has been read.
func (s *Server) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.ctx.Done():
	}
}

func (s *Server) handleOpen(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.opens++
	bh := s.blackhole
	s.notify()
	s.mu.Unlock()
	if bh&BlackholeOpen != 0 {
		s.hang(r)
		return
	}
	if !s.auth(w, r, s.opts.AppToken, s.opts.BotToken) || s.fault(w, &s.openFaults) {
		return
	}
	s.mu.Lock()
	s.seq++
	ticket := fmt.Sprintf("tk-%d-%d", s.seq, time.Now().UnixNano())
	s.tickets[ticket] = true
	s.mu.Unlock()
	host := strings.TrimPrefix(s.http.URL, "http://")
	if bh&BlackholeUpgrade != 0 {
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
	_, _ = io.Copy(io.Discard, r.Body) // see hang
	return b, true
}

func (s *Server) handlePost(w http.ResponseWriter, r *http.Request) {
	b, ok := s.decodePost(w, r)
	if !ok || !s.auth(w, r, s.opts.BotToken, s.opts.AppToken) || s.fault(w, &s.postFaults) {
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
	s.mu.Lock()
	s.seq++
	m := &Message{Channel: b.Channel, Text: b.Text, ThreadTS: b.ThreadTS, TS: s.nextTSLocked(), Metadata: md}
	s.msgs = append(s.msgs, m)
	bh := s.blackhole
	s.notify()
	s.mu.Unlock()
	if bh&BlackholePost != 0 {
		s.hang(r)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request) {
	b, ok := s.decodePost(w, r)
	if !ok || !s.auth(w, r, s.opts.BotToken, s.opts.AppToken) || s.fault(w, &s.postFaults) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if m.Channel == b.Channel && m.TS == b.TS {
			m.Text = b.Text
			m.Edits++
			s.notify()
			if s.blackhole&BlackholeUpdate != 0 {
				s.mu.Unlock()
				s.hang(r)
				s.mu.Lock()
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "message_not_found"})
}
