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

// Copy returns a copy of the slice *v read under mu: the accessor of what a
// fake recorded, `func (s *Server) Sent() []Sent { return fakeserver.Copy(&s.mu, &s.sent) }`.
func Copy[T any](mu sync.Locker, v *[]T) []T {
	mu.Lock()
	defer mu.Unlock()
	return append([]T(nil), *v...)
}

// Set sets *p to v under mu: a fake's switch, as one line.
func Set[T any](mu sync.Locker, p *T, v T) {
	mu.Lock()
	defer mu.Unlock()
	*p = v
}

// Locked returns cond run with mu held, for a condition that reads a
// fake's fields directly.
func Locked(mu sync.Locker, cond func() bool) func() bool {
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		return cond()
	}
}
