// SPDX-License-Identifier: Apache-2.0

package adaptertest

import (
	"fmt"
	"sync"

	"github.com/heraldgw/herald/pkg/adapter"
)

// States is an adapter.States in memory, shared by the adapters of a test
// that play instances on different nodes (each with a state directory of
// its own): what one saves the next one loads, as through the cluster's
// store. The zero value is ready; it is safe for concurrent use.
type States struct {
	mu   sync.Mutex
	vals map[string][]byte
}

var _ adapter.States = (*States)(nil)

// Load returns the value saved under name.
func (s *States) Load(name string, max int64) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vals[name]
	if !ok {
		return nil, false, nil
	}
	if int64(len(v)) > max {
		return nil, false, fmt.Errorf("larger than %d bytes", max)
	}
	return append([]byte(nil), v...), true, nil
}

// Save replaces the value under name.
func (s *States) Save(name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vals == nil {
		s.vals = map[string][]byte{}
	}
	s.vals[name] = append([]byte(nil), data...)
	return nil
}

// Remove forgets the value under name.
func (s *States) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.vals, name)
	return nil
}

// Get returns the value under name, "" if there is none.
func (s *States) Get(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.vals[name])
}

// String names the states in logs.
func (s *States) String() string { return "test states" }
