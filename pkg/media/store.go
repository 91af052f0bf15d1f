// SPDX-License-Identifier: Apache-2.0

package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

var (
	// ErrNoSpace: the disk (or quota) is full. The original error is kept
	// in the chain.
	ErrNoSpace = errors.New("media: no space left")
	// ErrStoreFull: the store would exceed its max_total_bytes.
	ErrStoreFull = errors.New("media: store full")
	// ErrNotFound: no file with that SHA-256 in the store.
	ErrNotFound = errors.New("media: not found")
	// ErrBadHash: a string that is not a lowercase SHA-256 hex digest.
	ErrBadHash = errors.New("media: bad sha256")
)

// Item describes a stored file.
type Item struct {
	SHA256 string            `json:"sha256"`
	Size   int64             `json:"size"`
	MIME   string            `json:"mime"`
	Kind   message.MediaKind `json:"kind"`
	Width  int               `json:"width,omitempty"`
	Height int               `json:"height,omitempty"`
}

// Store is a content-addressed media store under a directory. Safe for
// concurrent use within one process.
type Store struct {
	dir      string
	maxTotal int64

	mu    sync.Mutex
	usage int64
	// onUsage, if set, is told the usage after every change.
	onUsage func(used, limit int64)
}

// sniffLen is how much of a file's head Sniff is given.
const sniffLen = 64 << 10

// OpenStore opens (creating if needed) the store under dir, with a cap of
// maxTotal bytes (0: no cap), and computes its current usage. Leftover
// temporary files of a crash are removed.
func OpenStore(dir string, maxTotal int64) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("media: open store: %w", err)
	}
	s := &Store{dir: dir, maxTotal: maxTotal}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".tmp-") {
			return os.Remove(p)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		s.usage += info.Size()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("media: open store: %w", err)
	}
	return s, nil
}

// OnUsage sets f to be called with the store's usage and cap (0: none),
// at once and after every change (under the store's lock: f must not call
// back into the store).
func (s *Store) OnUsage(f func(used, limit int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onUsage = f
	s.changed()
}

// changed reports the usage to onUsage; s.mu is held.
func (s *Store) changed() {
	if s.onUsage != nil {
		s.onUsage(s.usage, s.maxTotal)
	}
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Usage is the total size of the stored files in bytes.
func (s *Store) Usage() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage
}

// ValidSHA reports whether sha is a lowercase SHA-256 hex digest.
func ValidSHA(sha string) bool {
	if len(sha) != 64 {
		return false
	}
	for _, c := range sha {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Path is the file holding sha's bytes (which may not exist). sha must be
// valid (ValidSHA); for an invalid one Path returns "".
func (s *Store) Path(sha string) string {
	if !ValidSHA(sha) {
		return ""
	}
	return filepath.Join(s.dir, sha[:2], sha)
}

// Has reports whether the store holds sha.
func (s *Store) Has(sha string) bool {
	p := s.Path(sha)
	if p == "" {
		return false
	}
	info, err := os.Lstat(p)
	return err == nil && info.Mode().IsRegular()
}

// Open opens sha's bytes for reading. A missing file is ErrNotFound.
func (s *Store) Open(sha string) (*os.File, error) {
	p := s.Path(sha)
	if p == "" {
		return nil, fmt.Errorf("media: open: %w: %q", ErrBadHash, sha)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("media: open %s: %w", sha, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("media: open: %w", err)
	}
	return f, nil
}

// Stat describes a stored file from its bytes (type sniffed from its head).
func (s *Store) Stat(sha string) (Item, error) {
	f, err := s.Open(sha)
	if err != nil {
		return Item{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Item{}, fmt.Errorf("media: stat: %w", err)
	}
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return Item{}, fmt.Errorf("media: stat: %w", err)
	}
	return describeHead(sha, info.Size(), head[:n]), nil
}

func describeHead(sha string, size int64, head []byte) Item {
	it := Item{SHA256: sha, Size: size}
	it.MIME, it.Kind = Sniff(head)
	it.Width, it.Height, _ = ImageSize(head)
	return it
}

// Remove deletes sha from the store; a missing file is not an error.
func (s *Store) Remove(sha string) error {
	p := s.Path(sha)
	if p == "" {
		return fmt.Errorf("media: remove: %w: %q", ErrBadHash, sha)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	info, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("media: remove: %w", err)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("media: remove: %w", err)
	}
	s.usage -= info.Size()
	s.changed()
	return nil
}

// noSpace wraps err with ErrNoSpace when it is ENOSPC or EDQUOT.
func noSpace(op string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("media: %s: %w: %w", op, ErrNoSpace, err)
	}
	return fmt.Errorf("media: %s: %w", op, err)
}

// Put stores the bytes of r, reading at most limit+1 of them: more than
// limit fails with an error wrapping adapter.ErrTooLarge. ctx cancels the
// copy between reads. If the store would then exceed its cap Put fails
// with ErrStoreFull; a full disk fails with ErrNoSpace. On any failure no
// file is left behind. Storing bytes already present is cheap and
// succeeds.
func (s *Store) Put(ctx context.Context, r io.Reader, limit int64) (Item, error) {
	if limit < 0 {
		limit = 0
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-")
	if err != nil {
		return Item{}, noSpace("put", err)
	}
	tmpName := tmp.Name()
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	h := sha256.New()
	head := &headBuffer{max: sniffLen}
	n, err := io.Copy(io.MultiWriter(tmp, h, head), &ctxReader{ctx: ctx, r: io.LimitReader(r, limit+1)})
	if err != nil {
		if ctx.Err() != nil {
			return Item{}, fmt.Errorf("media: put: %w", ctx.Err())
		}
		return Item{}, noSpace("put", err)
	}
	if n > limit {
		return Item{}, fmt.Errorf("media: put: %w: more than %d bytes", adapter.ErrTooLarge, limit)
	}
	if err := tmp.Sync(); err != nil {
		return Item{}, noSpace("put: fsync", err)
	}
	if err := tmp.Close(); err != nil {
		return Item{}, noSpace("put: close", err)
	}
	sha := hex.EncodeToString(h.Sum(nil))
	item := describeHead(sha, n, head.b)

	s.mu.Lock()
	defer s.mu.Unlock()
	final := s.Path(sha)
	var replaced int64 // a damaged copy under the name is replaced
	if info, err := os.Lstat(final); err == nil && info.Mode().IsRegular() {
		if info.Size() == n {
			return item, nil // already stored; the deferred cleanup drops tmp
		}
		replaced = info.Size()
	}
	if s.maxTotal > 0 && s.usage-replaced+n > s.maxTotal {
		return Item{}, fmt.Errorf("media: put: %w: %d bytes used, %d more, cap %d", ErrStoreFull, s.usage, n, s.maxTotal)
	}
	sub := filepath.Dir(final)
	if err := os.MkdirAll(sub, 0o700); err != nil {
		return Item{}, noSpace("put: mkdir", err)
	}
	if err := os.Rename(tmpName, final); err != nil {
		return Item{}, noSpace("put: rename", err)
	}
	done = true
	if err := syncDir(sub); err != nil {
		os.Remove(final)
		return Item{}, noSpace("put: fsync dir", err)
	}
	if err := syncDir(s.dir); err != nil {
		os.Remove(final)
		return Item{}, noSpace("put: fsync dir", err)
	}
	s.usage += n - replaced
	s.changed()
	return item, nil
}

// Prune removes every stored file for which keep reports false, and
// returns how many it removed and how many bytes it freed.
func (s *Store) Prune(keep func(sha string) bool) (removed int, freed int64, err error) {
	subs, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, 0, fmt.Errorf("media: prune: %w", err)
	}
	for _, sub := range subs {
		if !sub.IsDir() || len(sub.Name()) != 2 {
			continue
		}
		files, err := os.ReadDir(filepath.Join(s.dir, sub.Name()))
		if err != nil {
			return removed, freed, fmt.Errorf("media: prune: %w", err)
		}
		for _, f := range files {
			sha := f.Name()
			if !ValidSHA(sha) || sha[:2] != sub.Name() || keep(sha) {
				continue
			}
			info, err := f.Info()
			if err != nil {
				continue
			}
			if err := s.Remove(sha); err != nil {
				return removed, freed, fmt.Errorf("media: prune: %w", err)
			}
			removed++
			freed += info.Size()
		}
	}
	return removed, freed, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// headBuffer keeps the first max bytes written to it.
type headBuffer struct {
	b   []byte
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
