// SPDX-License-Identifier: Apache-2.0

package fakeserver

import "sync"

// Get returns *v read under mu: the accessor of a fake's counter or flag,
// as one line, `func (s *Server) Opens() int { return fakeserver.Get(&s.mu, &s.opens) }`.
func Get[T any](mu sync.Locker, v *T) T {
	mu.Lock()
	defer mu.Unlock()
	return *v
}
