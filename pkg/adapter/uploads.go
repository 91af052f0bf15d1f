// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// maxUploadsKept bounds the uploads an Uploads remembers.
const maxUploadsKept = 256

// Uploads remembers, by a reply part's idempotency key, the platform's
// reference of a file uploaded for a part whose message is not sent yet
// (an upload, then a message naming the file: Mattermost, Matrix). A retry
// of the part sends the message with the same file instead of uploading it
// again. It holds at most 256 uploads, forgetting the oldest. The zero
// value is ready; it is safe for concurrent use.
type Uploads struct {
	mu    sync.Mutex
	refs  map[string]upload
	order []string // keys, oldest first
}

type upload struct{ chat, ref string }

// Get returns the reference uploaded for key in chat, if any.
func (u *Uploads) Get(key, chat string) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	up, ok := u.refs[key]
	if !ok || key == "" || up.chat != chat {
		return "", false
	}
	return up.ref, true
}

// Put remembers ref as the file uploaded for key in chat. An empty key
// (a part without idempotency) is not remembered.
func (u *Uploads) Put(key, chat, ref string) {
	if key == "" {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.refs == nil {
		u.refs = map[string]upload{}
	}
	if _, ok := u.refs[key]; !ok {
		if len(u.order) >= maxUploadsKept {
			delete(u.refs, u.order[0])
			u.order = u.order[1:]
		}
		u.order = append(u.order, key)
	}
	u.refs[key] = upload{chat: chat, ref: ref}
}

// Forget drops the upload of key, once its message is sent (or refused
// for good).
func (u *Uploads) Forget(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.refs[key]; !ok {
		return
	}
	delete(u.refs, key)
	for i, k := range u.order {
		if k == key {
			u.order = append(u.order[:i], u.order[i+1:]...)
			break
		}
	}
}

// uploadRate is the slowest upload speed herald waits for.
const uploadRate = 128 << 10

// UploadTimeout bounds an upload of size bytes: the request timeout plus
// a second per 128 KiB.
func UploadTimeout(requestTimeout time.Duration, size int64) time.Duration {
	return requestTimeout + time.Duration(size/uploadRate)*time.Second
}

// OpenMedia opens the file of an outbound media part and returns it with
// its size. A missing file (pruned from the media store) is ErrPermanent,
// another failure ErrTemporary. The caller closes the file.
func OpenMedia(m *message.OutboundMedia) (*os.File, int64, error) {
	f, err := os.Open(m.Path)
	if err != nil {
		kind := ErrTemporary
		if errors.Is(err, fs.ErrNotExist) {
			kind = ErrPermanent
		}
		return nil, 0, fmt.Errorf("%w: %w", kind, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %w", ErrTemporary, err)
	}
	return f, st.Size(), nil
}
