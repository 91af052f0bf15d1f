// SPDX-License-Identifier: Apache-2.0

package adapter

import "sync"

// maxProgress bounds the parts a Progress remembers.
const maxProgress = 256

// MediaStep is how far the send of one media part got on a platform whose
// file message is an upload, then a message with the uploaded id, then a
// caption message: MediaID (and the platform's media Type, where the file
// message names it) once the upload succeeded, Shown once the file message
// was sent.
type MediaStep struct {
	MediaID, Type string
	Shown         *SendResult
}

// Progress remembers the MediaStep of media parts by idempotency key, in
// memory, so that a retry of a part whose later step failed neither uploads
// again nor shows the file twice. It holds at most 256 parts, forgetting the
// oldest first. The zero value is ready to use.
type Progress struct {
	mu    sync.Mutex
	m     map[string]MediaStep
	order []string
}

// Get returns the step recorded for key, the zero MediaStep if none.
func (p *Progress) Get(key string) MediaStep {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[key]
}

// Set records step for key; an empty key (a part without idempotency) is
// not recorded.
func (p *Progress) Set(key string, step MediaStep) {
	if key == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]MediaStep{}
	}
	if _, ok := p.m[key]; !ok {
		p.order = append(p.order, key)
		if len(p.order) > maxProgress {
			delete(p.m, p.order[0])
			p.order = p.order[1:]
		}
	}
	p.m[key] = step
}

// Forget drops key once its part is delivered.
func (p *Progress) Forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.m[key]; !ok {
		return
	}
	delete(p.m, key)
	for i, k := range p.order {
		if k == key {
			p.order = append(p.order[:i], p.order[i+1:]...)
			break
		}
	}
}

// Len is the number of parts remembered.
func (p *Progress) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}
