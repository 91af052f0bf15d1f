// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"time"
)

func (s *Server) push(connID int, typ, eventID string, payload any) Pushed {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	d := &delivery{eventID: eventID, typ: typ, payload: b, envIDs: map[string]int{}}
	s.mu.Lock()
	var c *wsConn
	if connID != 0 {
		c = s.conns[connID]
		if c == nil {
			s.mu.Unlock()
			panic(fmt.Sprintf("slacktest: no connection %d", connID))
		}
	}
	s.pending = append(s.pending, d)
	s.mu.Unlock()
	id, _ := s.send(c, d)
	return Pushed{EnvelopeID: id, EventID: eventID}
}

func (s *Server) eventPayload(ev *Event) map[string]any {
	s.mu.Lock()
	s.seq++
	n := s.seq
	s.mu.Unlock()
	ev.EventID = cmp.Or(ev.EventID, fmt.Sprintf("Ev%06d", n))
	ev.Type = cmp.Or(ev.Type, "message")
	ev.TS = cmp.Or(ev.TS, fmt.Sprintf("1690000000.%06d", n))
	e := map[string]any{"type": ev.Type, "channel": ev.Channel, "user": ev.User, "text": ev.Text, "ts": ev.TS, "event_ts": ev.TS}
	for k, v := range map[string]string{"channel_type": ev.ChannelType, "thread_ts": ev.ThreadTS, "bot_id": ev.BotID, "subtype": ev.Subtype} {
		if v != "" {
			e[k] = v
		}
	}
	if len(ev.Files) > 0 {
		e["files"] = ev.Files
	}
	return map[string]any{
		"token":      "verification-token",
		"team_id":    "T1",
		"api_app_id": "A1",
		"event":      e,
		"type":       "event_callback",
		"event_id":   ev.EventID,
		"event_time": 1690000000,
		"authorizations": []map[string]any{
			{"enterprise_id": nil, "team_id": "T1", "user_id": s.opts.BotUserID, "is_bot": true, "is_enterprise_install": false},
		},
		"is_ext_shared_channel": false,
	}
}

// PushEvent sends an events_api envelope on the newest connection.
func (s *Server) PushEvent(ev Event) Pushed { return s.PushEventTo(0, ev) }

// PushEventTo sends an events_api envelope on connection id (0: newest).
func (s *Server) PushEventTo(id int, ev Event) Pushed {
	p := s.eventPayload(&ev)
	return s.push(id, "events_api", ev.EventID, p)
}

// PushSlash sends a slash_commands envelope on the newest connection.
func (s *Server) PushSlash(sc SlashCommand) Pushed {
	if sc.TriggerID == "" {
		s.mu.Lock()
		s.seq++
		sc.TriggerID = fmt.Sprintf("trig-%d", s.seq)
		s.mu.Unlock()
	}
	return s.push(0, "slash_commands", "slash:"+sc.TriggerID, map[string]any{
		"token": "verification-token", "team_id": "T1", "team_domain": "fake",
		"channel_id": sc.ChannelID, "channel_name": sc.ChannelName,
		"user_id": sc.UserID, "user_name": sc.UserName,
		"command": sc.Command, "text": sc.Text, "api_app_id": "A1",
		"response_url": "https://hooks.slack.invalid/commands/1", "trigger_id": sc.TriggerID,
	})
}

// PushInteractive sends an interactive (block_actions) envelope.
func (s *Server) PushInteractive() Pushed {
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("interactive-%d", s.seq)
	s.mu.Unlock()
	return s.push(0, "interactive", id, map[string]any{
		"type": "block_actions", "user": map[string]any{"id": "U1"}, "trigger_id": id,
		"actions": []map[string]any{{"action_id": "a1", "value": "v"}},
	})
}

// PushPress sends the interactive (block_actions) envelope of a button
// press on the newest connection. Its EventID is "action:" and the
// interaction's trigger_id.
func (s *Server) PushPress(p Press) Pushed {
	s.mu.Lock()
	s.seq++
	trigger := fmt.Sprintf("trig-press-%d", s.seq)
	actionTS := s.nextTSLocked()
	s.mu.Unlock()
	msg := map[string]any{"type": "message", "ts": p.MessageTS, "user": s.opts.BotUserID, "text": ""}
	container := map[string]any{"type": "message", "message_ts": p.MessageTS, "channel_id": p.Channel, "is_ephemeral": false}
	if p.ThreadTS != "" {
		msg["thread_ts"] = p.ThreadTS
		container["thread_ts"] = p.ThreadTS
	}
	return s.push(0, "interactive", "action:"+trigger, map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": p.User, "username": "user-" + p.User, "team_id": "T1"},
		"api_app_id":   "A1",
		"team":         map[string]any{"id": "T1", "domain": "fake"},
		"container":    container,
		"trigger_id":   trigger,
		"channel":      map[string]any{"id": p.Channel, "name": "channel-" + p.Channel},
		"message":      msg,
		"response_url": "https://hooks.slack.invalid/actions/1",
		"actions": []map[string]any{{
			"type": "button", "action_id": p.ActionID, "block_id": "b1", "value": p.Value,
			"text": map[string]any{"type": "plain_text", "text": "button"}, "action_ts": actionTS,
		}},
	})
}

// PushRaw writes a frame as is on the newest connection; it is not tracked
// for redelivery.
func (s *Server) PushRaw(frame string) error {
	s.mu.Lock()
	c := s.newest()
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("slacktest: no connection")
	}
	return s.writeRaw(c, []byte(frame))
}

// Redeliver sends the envelope of eventID again at once, acknowledged or
// not, with retry_attempt+1, as Slack does when an acknowledgement is lost.
func (s *Server) Redeliver(eventID string) Pushed {
	s.mu.Lock()
	var d *delivery
	for _, p := range s.pending {
		if p.eventID == eventID {
			d = p
		}
	}
	if d == nil {
		s.mu.Unlock()
		panic("slacktest: unknown event " + eventID)
	}
	d.attempt++
	d.acked = false
	s.mu.Unlock()
	id, _ := s.send(nil, d)
	return Pushed{EnvelopeID: id, EventID: eventID}
}

func (s *Server) redeliverLoop() {
	defer s.wg.Done()
	tick := max(s.opts.RedeliverAfter/5, 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		var due []*delivery
		s.mu.Lock()
		for _, d := range s.pending {
			if !d.acked && d.attempt < s.opts.MaxRetries && time.Since(d.sentAt) >= s.opts.RedeliverAfter && s.newest() != nil {
				d.attempt++
				due = append(due, d)
			}
		}
		s.mu.Unlock()
		for _, d := range due {
			_, _ = s.send(nil, d)
		}
	}
}
