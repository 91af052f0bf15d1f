// SPDX-License-Identifier: Apache-2.0

package adapter

import "sync"

// maxRemembered bounds the parts a Remembered holds.
const maxRemembered = 256

// Remembered holds a value per reply part, by the part's idempotency key,
// in memory: how far a multi-step send of the part got, so that its retry
// does not repeat a step that succeeded. It holds at most 256 parts,
// forgetting the oldest first. The zero value is ready; it is safe for
// concurrent use.
type Remembered[V any] struct {
	mu    sync.Mutex
	m     map[string]V
	order []string // keys, oldest first
}

// Get returns the value recorded for key and whether there is one.
func (r *Remembered[V]) Get(key string) (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[key]
	return v, ok
}

// Set records v for key; an empty key (a part without idempotency) is not
// recorded.
func (r *Remembered[V]) Set(key string, v V) {
	if key == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]V{}
	}
	if _, ok := r.m[key]; !ok {
		r.order = append(r.order, key)
		if len(r.order) > maxRemembered {
			delete(r.m, r.order[0])
			r.order = r.order[1:]
		}
	}
	r.m[key] = v
}

// Forget drops key once its part is delivered (or refused for good).
func (r *Remembered[V]) Forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[key]; !ok {
		return
	}
	delete(r.m, key)
	for i, k := range r.order {
		if k == key {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
}

// Len is the number of parts remembered.
func (r *Remembered[V]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// MediaStep is how far the send of one media part got on a platform whose
// file message is an upload, then a message with the uploaded id, then a
// caption message: MediaID (and the platform's media Type, where the file
// message names it) once the upload succeeded, Shown once the file message
// was sent.
type MediaStep struct {
	MediaID, Type string
	Shown         *SendResult
}

// Progress remembers the MediaStep of media parts (DingTalk, WeCom), so
// that a retry of a part whose later step failed neither uploads again nor
// shows the file twice.
type Progress = Remembered[MediaStep]

// Uploads remembers the platform's reference of a file uploaded for a part
// whose message is not sent yet (an upload, then a message naming the file:
// Mattermost, Matrix), with the chat it was uploaded to. A retry of the part
// sends the message with the same file instead of uploading it again.
type Uploads struct{ r Remembered[upload] }

type upload struct{ chat, ref string }

// Get returns the reference uploaded for key in chat, if any.
func (u *Uploads) Get(key, chat string) (string, bool) {
	up, ok := u.r.Get(key)
	if !ok || up.chat != chat {
		return "", false
	}
	return up.ref, true
}

// Put remembers ref as the file uploaded for key in chat.
func (u *Uploads) Put(key, chat, ref string) { u.r.Set(key, upload{chat: chat, ref: ref}) }

// Forget drops the upload of key, once its message is sent (or refused
// for good).
func (u *Uploads) Forget(key string) { u.r.Forget(key) }
