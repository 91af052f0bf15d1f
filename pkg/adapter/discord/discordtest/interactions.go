// SPDX-License-Identifier: Apache-2.0

package discordtest

import (
	"cmp"
	"encoding/json"
	"net/http"
	"strconv"
)

// Press describes a user pressing a button of a message: an
// INTERACTION_CREATE of type 3 (MESSAGE_COMPONENT).
type Press struct {
	ChannelID string // default "200000000000000001"
	GuildID   string // empty: a direct message
	// ThreadType, when set (10, 11 or 12), makes the channel a thread.
	ThreadType int
	UserID     string // default "300000000000000001"
	MessageID  string
	CustomID   string
}

// Interaction is an interaction pushed with PushPress and what it was
// answered.
type Interaction struct {
	ID, Token string
	// Callbacks are the types of the callbacks received for it, in order;
	// Discord accepts only the first.
	Callbacks []int
}

type interactionState struct {
	token     string
	callbacks []int
}

// PushPress dispatches the INTERACTION_CREATE of a button press and
// returns the interaction's id.
func (s *Server) PushPress(p Press) string {
	p.ChannelID = cmp.Or(p.ChannelID, "200000000000000001")
	p.UserID = cmp.Or(p.UserID, "300000000000000001")
	s.mu.Lock()
	s.nextEventMsg++
	id := strconv.FormatInt(800000000000000000+s.nextEventMsg, 10)
	token := "itoken-" + id
	if s.interactions == nil {
		s.interactions = map[string]*interactionState{}
	}
	s.interactions[id] = &interactionState{token: token}
	s.mu.Unlock()
	u := map[string]any{"id": p.UserID, "username": "user" + p.UserID, "global_name": nil, "bot": false}
	ch := map[string]any{"id": p.ChannelID, "type": 0}
	if p.ThreadType != 0 {
		ch["type"] = p.ThreadType
	} else if p.GuildID == "" {
		ch["type"] = 1
	}
	d := map[string]any{
		"id": id, "application_id": s.BotID, "type": 3, "token": token, "version": 1,
		"channel_id": p.ChannelID, "channel": ch,
		"message": map[string]any{"id": p.MessageID, "channel_id": p.ChannelID, "author": map[string]any{"id": s.BotID, "bot": true}},
		"data":    map[string]any{"custom_id": p.CustomID, "component_type": 2},
	}
	if p.GuildID != "" {
		d["guild_id"] = p.GuildID
		d["member"] = map[string]any{"user": u, "roles": []string{}}
	} else {
		d["user"] = u
	}
	s.Push("INTERACTION_CREATE", d)
	return id
}

// Interactions returns the pushed interactions with their callbacks.
func (s *Server) Interactions() map[string]Interaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Interaction{}
	for id, st := range s.interactions {
		out[id] = Interaction{ID: id, Token: st.token, Callbacks: append([]int(nil), st.callbacks...)}
	}
	return out
}

// handleCallback answers POST /interactions/{id}/{token}/callback like
// Discord: 204 for the first callback of a known interaction with its
// token, 400 (40060) for a second one, 404 (10062) for an unknown one.
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request, body []byte) int {
	var b struct {
		Type int `json:"type"`
	}
	if json.Unmarshal(body, &b) != nil || b.Type < 1 || b.Type > 10 {
		return writeJSON(w, http.StatusBadRequest, errorBodies[http.StatusBadRequest])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.interactions[r.PathValue("id")]
	if st == nil || st.token != r.PathValue("token") {
		return writeJSON(w, http.StatusNotFound, map[string]any{"message": "Unknown interaction", "code": 10062})
	}
	st.callbacks = append(st.callbacks, b.Type)
	s.notify()
	if len(st.callbacks) > 1 {
		return writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Interaction has already been acknowledged.", "code": 40060})
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}
