// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"errors"
	"fmt"

	"github.com/heraldgw/herald/pkg/adapter"
)

// stateFileName is the name of the saved sync position in Env.States.
const stateFileName = "sync.json"

// stateVersion is bumped when the meaning of a field changes; a file of
// another version is ignored.
const stateVersion = 1

// maxStateFile bounds what is read.
const maxStateFile = 1 << 20

// savedState is what survives a restart. Since is the acknowledgement:
// every event before it was stored or skipped for good.
type savedState struct {
	Version int    `json:"version"`
	UserID  string `json:"user_id"`
	Since   string `json:"since"`
	// Direct lists the rooms known to be direct chats (two members, or
	// joined from an is_direct invite): /sync reports it only on change.
	Direct []string `json:"direct,omitempty"`
	// Notified lists the encrypted rooms already told that herald cannot
	// read them.
	Notified []string `json:"notified,omitempty"`
}

// stateFile reads and writes the saved state in Env.States; States that
// keep nothing keep the state in memory only.
type stateFile struct{ states adapter.States }

// where names the saved state for logs.
func (f stateFile) where() string { return adapter.StateWhere(f.states, stateFileName) }

// load returns the saved state, nil if there is none.
func (f stateFile) load() (*savedState, error) {
	var s savedState
	if ok, err := adapter.LoadState(f.states, stateFileName, maxStateFile, &s); !ok || err != nil {
		return nil, err
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("version %d, want %d", s.Version, stateVersion)
	}
	if s.Since == "" || !validUserID(s.UserID) {
		return nil, errors.New("missing since or user_id")
	}
	return &s, nil
}

// save writes s atomically (in a directory, adapter.SaveStateFile): a
// crash leaves either the old or the new state.
func (f stateFile) save(s *savedState) error {
	return adapter.SaveState(f.states, stateFileName, s)
}

// cleanTemp removes temporary files left by a crash during save.
func (f stateFile) cleanTemp() { adapter.CleanStateTemp(f.states, stateFileName) }
