// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"errors"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
)

// savedMark is what the state file holds, to skip writes that change
// nothing.
type savedMark struct {
	ok        bool
	sessionID string
	resumeURL string
	seq       int64
	at        time.Time
}

// persisting reports whether sessions are saved across restarts.
func (a *Adapter) persisting() bool { return adapter.Keeps(a.state.states) }

// restoreSession loads a saved session at start, so that the first
// connection resumes it. Whatever goes wrong, the adapter identifies.
func (a *Adapter) restoreSession() {
	if !a.persisting() {
		return
	}
	a.state.cleanTemp()
	now := time.Now()
	s, err := a.state.load(now, a.cfg.ResumeWindow, a.tokenFP, a.cfg.Intents)
	log := a.Log.WithField("file", a.state.where())
	switch {
	case errors.Is(err, errStateIgnored):
		log.WithError(err).Info("discord: saved session not resumed, identifying")
		return
	case err != nil:
		log.WithError(err).Warn("discord: ignoring unreadable saved session, identifying")
		return
	case s == nil:
		log.Debug("discord: no saved session, identifying")
		return
	}
	a.persistMu.Lock()
	a.sessionID, a.resumeURL, a.botID = s.SessionID, s.ResumeURL, s.BotID
	a.seq.Store(s.Seq)
	a.saved = savedMark{ok: true, sessionID: s.SessionID, resumeURL: s.ResumeURL, seq: s.Seq, at: s.SavedAt}
	a.persistMu.Unlock()
	log.WithFields(map[string]any{"seq": s.Seq, "age": now.Sub(s.SavedAt).Round(time.Millisecond).String()}).
		Info("discord: resuming saved session")
}

// setSession records the session of a READY.
func (a *Adapter) setSession(id, resumeURL, botID string, seq int64) {
	a.persistMu.Lock()
	defer a.persistMu.Unlock()
	a.sessionID, a.resumeURL, a.botID = id, resumeURL, botID
	a.seq.Store(seq)
}

// setResumeURL replaces resume_gateway_url ("" = the main gateway).
func (a *Adapter) setResumeURL(u string) {
	a.persistMu.Lock()
	defer a.persistMu.Unlock()
	a.resumeURL = u
}

// dropSession forgets the session, in memory and on disk: the next
// connection identifies, and so does the next herald process.
func (a *Adapter) dropSession() {
	a.persistMu.Lock()
	defer a.persistMu.Unlock()
	a.sessionID, a.resumeURL = "", ""
	a.seq.Store(0)
	if !a.saved.ok {
		return
	}
	a.saved = savedMark{}
	if err := a.state.remove(); err != nil {
		// A leftover file is harmless: Discord refuses the Resume and the
		// next process identifies.
		a.Log.WithError(err).Warn("discord: removing the invalidated saved session")
	}
}

// hasSession reports whether there is a session to resume; any goroutine.
func (a *Adapter) hasSession() bool {
	a.persistMu.Lock()
	defer a.persistMu.Unlock()
	return a.sessionID != ""
}

// saveSession writes the session if it changed since the last write, if
// the last write is older than refreshInterval, or if force. Call it only
// while the connection is up (or just ended): saved_at means "known alive".
func (a *Adapter) saveSession(force bool) {
	if !a.persisting() {
		return
	}
	a.persistMu.Lock()
	defer a.persistMu.Unlock()
	if a.sessionID == "" {
		return
	}
	seq, now := a.seq.Load(), time.Now()
	m := savedMark{ok: true, sessionID: a.sessionID, resumeURL: a.resumeURL, seq: seq, at: now}
	if !force && a.saved.ok && a.saved.sessionID == m.sessionID && a.saved.resumeURL == m.resumeURL &&
		a.saved.seq == m.seq && now.Sub(a.saved.at) < a.tun.refreshInterval {
		return
	}
	err := a.state.save(&savedSession{
		Version:   stateVersion,
		SessionID: a.sessionID,
		Seq:       seq,
		ResumeURL: a.resumeURL,
		BotID:     a.botID,
		Intents:   a.cfg.Intents,
		TokenFP:   a.tokenFP,
		SavedAt:   now.UTC(),
	})
	if a.saves.Done(a.Log.WithField("file", a.state.where()), err, "discord", "the session", "a restart will identify and lose what is sent meanwhile") {
		a.saved = m
	}
}
