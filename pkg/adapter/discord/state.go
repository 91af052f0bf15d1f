// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
)

// stateFileName is the name of the saved session in Env.States, which is
// private to one platform instance, so the name needs no instance part.
const stateFileName = "session.json"

// stateVersion is bumped when the meaning of a field changes; a file of
// another version is ignored (the adapter then identifies).
const stateVersion = 1

// maxStateFile bounds what is read: a valid file is a few hundred bytes.
const maxStateFile = 64 << 10

// savedSession is the resumable session as written to disk. It holds what
// Resume needs except the token, which is never written: TokenFP only tells
// whether the file was written for the configured token.
type savedSession struct {
	Version   int    `json:"version"`
	SessionID string `json:"session_id"`
	// Seq is the highest sequence number such that this event and every
	// earlier one was handled (stored durably or deliberately skipped).
	Seq       int64  `json:"seq"`
	ResumeURL string `json:"resume_gateway_url"`
	BotID     string `json:"bot_id"`
	// Intents are those of the Identify that created the session: a
	// resumed session keeps them, so a changed intents setting needs a new
	// session.
	Intents int `json:"intents"`
	// TokenFP is tokenFingerprint of the token the session belongs to.
	TokenFP string `json:"token_fingerprint"`
	// SavedAt is when the file was written, always while the connection
	// was up: the session was known alive then, and Discord's timeout runs
	// from the moment the connection ended, at most refreshInterval later.
	SavedAt time.Time `json:"saved_at"`
}

// tokenFingerprint identifies a token without revealing it: the first 64
// bits of a domain-separated SHA-256. Bot tokens end in a long random part,
// so the fingerprint cannot be turned back into a token; it only answers
// "is this the token the session was created with?".
func tokenFingerprint(token string) string {
	h := sha256.Sum256([]byte("herald/discord/session/v1\x00" + token))
	return hex.EncodeToString(h[:8])
}

// stateFile reads and writes the saved session in states (Env.States);
// states that keep nothing (adapter.Keeps) disable it.
type stateFile struct {
	states adapter.States
}

// where names the saved session for logs.
func (f stateFile) where() string { return adapter.StateWhere(f.states, stateFileName) }

// errStateIgnored wraps the reasons a readable file is not used that are
// expected in normal operation (too old, other token or intents), as
// opposed to a corrupt file.
var errStateIgnored = errors.New("not usable")

// load reads the saved session. It returns (nil, nil) when there is none, an
// error wrapping errStateIgnored when it exists but does not apply (too old
// for window, other token, other intents), and any other error when it
// cannot be read or is corrupt.
func (f stateFile) load(now time.Time, window time.Duration, tokenFP string, intents int) (*savedSession, error) {
	var s savedSession
	if ok, err := adapter.LoadState(f.states, stateFileName, maxStateFile, &s); !ok || err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	switch age := now.Sub(s.SavedAt); {
	case s.TokenFP != tokenFP:
		return nil, fmt.Errorf("%w: written for another bot token", errStateIgnored)
	case s.Intents != intents:
		return nil, fmt.Errorf("%w: session has intents %d, configuration %d", errStateIgnored, s.Intents, intents)
	case age > window:
		return nil, fmt.Errorf("%w: saved %v ago, beyond resume_window %v", errStateIgnored, age.Round(time.Second), window)
	}
	// A saved_at in the future (clock stepped back) is accepted: the
	// worst case is one Resume that Discord refuses.
	return &s, nil
}

// check validates the fields of a decoded file.
func (s *savedSession) check() error {
	switch {
	case s.Version != stateVersion:
		return fmt.Errorf("version %d, want %d", s.Version, stateVersion)
	case s.SessionID == "" || len(s.SessionID) > 256:
		return errors.New("missing or oversized session_id")
	case s.BotID == "" || len(s.BotID) > 32:
		return errors.New("missing or oversized bot_id")
	case s.Seq < 0:
		return fmt.Errorf("negative seq %d", s.Seq)
	case s.TokenFP == "":
		return errors.New("missing token_fingerprint")
	case s.SavedAt.IsZero():
		return errors.New("missing saved_at")
	}
	if s.ResumeURL != "" {
		if err := checkResumeURL(s.ResumeURL); err != nil {
			return err
		}
	}
	return nil
}

// checkResumeURL accepts wss URLs, and ws only on loopback (the test fake).
// The token is sent to this URL, so a file pointing elsewhere in clear text
// is refused rather than trusted.
func checkResumeURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("resume_gateway_url: %w", err)
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("resume_gateway_url %q has no host", raw)
	case u.Scheme == "wss":
		return nil
	case u.Scheme == "ws" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("resume_gateway_url %q is neither wss nor ws on loopback", raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// save writes s atomically (in a directory, adapter.SaveStateFile): a
// crash leaves either the old or the new session, never a torn one.
func (f stateFile) save(s *savedSession) error {
	return adapter.SaveState(f.states, stateFileName, s)
}

// remove deletes the saved session; a missing one is not an error.
func (f stateFile) remove() error {
	if !adapter.Keeps(f.states) {
		return nil
	}
	return f.states.Remove(stateFileName)
}

// cleanTemp removes temporary files left by a crash during save.
func (f stateFile) cleanTemp() { adapter.CleanStateTemp(f.states, stateFileName) }
