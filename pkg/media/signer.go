// SPDX-License-Identifier: Apache-2.0

package media

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
)

// keyLen is the size of a signing key.
const keyLen = 32

// tokenLen is the decoded size of a token: sha256, expiry, MAC.
const tokenLen = 32 + 8 + 32

// PathPrefix is where Handler expects to be mounted.
const PathPrefix = "/media/"

// Signer makes and checks signed, expiring URLs for stored files, and
// serves them.
type Signer struct {
	key   atomic.Pointer[[]byte]
	store *Store
	now   func() time.Time
	// OnReject, if set, is called with a short reason for each refused
	// request (bad_token, bad_mac, expired, missing, method).
	OnReject func(reason string)
}

// LoadOrCreateKey reads the 32-byte key in path, creating it (0600, random,
// atomically: written to a temporary file, fsynced and linked into place,
// so two processes agree on one key) if it does not exist.
func LoadOrCreateKey(path string) ([]byte, error) {
	for range 2 {
		key, err := os.ReadFile(path)
		if err == nil {
			if len(key) != keyLen {
				return nil, fmt.Errorf("media: signing key %s: %d bytes, want %d", path, len(key), keyLen)
			}
			return key, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("media: signing key: %w", err)
		}
		if err := createKey(path); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("media: signing key %s: vanished after creation", path)
}

func createKey(path string) error {
	key := make([]byte, keyLen)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("media: signing key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("media: signing key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-key-")
	if err != nil {
		return fmt.Errorf("media: signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("media: signing key: %w", err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return noSpace("signing key", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return noSpace("signing key", err)
	}
	if err := tmp.Close(); err != nil {
		return noSpace("signing key", err)
	}
	// Link fails if another process won the race: then its key is used.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("media: signing key: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("media: signing key: %w", err)
	}
	return nil
}

// NewSigner returns a signer with key (32 bytes) for the files of store.
func NewSigner(key []byte, store *Store) (*Signer, error) {
	if len(key) != keyLen {
		return nil, fmt.Errorf("media: signer: key of %d bytes, want %d", len(key), keyLen)
	}
	s := &Signer{store: store, now: time.Now}
	k := append([]byte(nil), key...)
	s.key.Store(&k)
	return s, nil
}

// SetKey makes key (32 bytes) the signing key from now on: links signed
// with the previous key are refused after it. Cluster mode sets the key
// every node shares, so that a link signed by one node is valid on all.
func (s *Signer) SetKey(key []byte) error {
	if len(key) != keyLen {
		return fmt.Errorf("media: signer: key of %d bytes, want %d", len(key), keyLen)
	}
	k := append([]byte(nil), key...)
	s.key.Store(&k)
	return nil
}

func (s *Signer) mac(sha []byte, exp uint64) []byte {
	m := hmac.New(sha256.New, *s.key.Load())
	m.Write([]byte("herald media v1\x00"))
	m.Write(sha)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], exp)
	m.Write(b[:])
	return m.Sum(nil)
}

// Token returns the signed token for sha valid until exp.
func (s *Signer) Token(sha string, exp time.Time) (string, error) {
	raw, err := hex.DecodeString(sha)
	if err != nil || !ValidSHA(sha) {
		return "", fmt.Errorf("media: token: %w: %q", ErrBadHash, sha)
	}
	e := uint64(max(exp.Unix(), 0))
	buf := make([]byte, 0, tokenLen)
	buf = append(buf, raw...)
	buf = binary.BigEndian.AppendUint64(buf, e)
	buf = append(buf, s.mac(raw, e)...)
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

// Verify checks a token and returns the SHA-256 it grants, or a reason
// for refusing it.
func (s *Signer) Verify(token string) (sha string, reason string) {
	buf, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(buf) != tokenLen {
		return "", "bad_token"
	}
	raw, e, mac := buf[:32], binary.BigEndian.Uint64(buf[32:40]), buf[40:]
	if !hmac.Equal(mac, s.mac(raw, e)) {
		return "", "bad_mac"
	}
	if e > uint64(1<<62) || s.now().Unix() >= int64(e) {
		return "", "expired"
	}
	return hex.EncodeToString(raw), ""
}

// URL returns base + "/media/<token>/<name>" granting item for ttl. name
// is made safe (SafeName) and escaped.
func (s *Signer) URL(base string, item Item, name string, ttl time.Duration) (string, error) {
	tok, err := s.Token(item.SHA256, s.now().Add(ttl))
	if err != nil {
		return "", err
	}
	return strings.TrimRight(base, "/") + PathPrefix + tok + "/" + url.PathEscape(SafeName(name, item.MIME)), nil
}

// SafeName makes a file name fit for a URL and Content-Disposition:
// directories dropped, control and quoting characters replaced, bounded
// length, never empty (derived from the MIME type then).
func SafeName(name, mimeType string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == '"' || r == '/' || r == '\\' || r == ';' || r == '%' || unicode.IsControl(r) || !unicode.IsPrint(r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
		if b.Len() > 120 {
			break
		}
	}
	n := strings.TrimLeft(strings.TrimSpace(b.String()), ".")
	if n == "" || n == "_" {
		n = "file"
		if exts, _ := mime.ExtensionsByType(mimeType); len(exts) > 0 {
			n += exts[0]
		}
	}
	return n
}

// Handler serves GET and HEAD under PathPrefix for valid, unexpired
// tokens. Every failure gets the same plain 404.
func (s *Signer) Handler() http.Handler {
	return http.HandlerFunc(s.serve)
}

func (s *Signer) reject(w http.ResponseWriter, reason string) {
	if s.OnReject != nil {
		s.OnReject(reason)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("not found\n"))
}

func (s *Signer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.reject(w, "method")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok {
		s.reject(w, "bad_token")
		return
	}
	tok, name, _ := strings.Cut(rest, "/")
	sha, reason := s.Verify(tok)
	if reason != "" {
		s.reject(w, reason)
		return
	}
	f, err := s.store.Open(sha)
	if err != nil {
		s.reject(w, "missing")
		return
	}
	defer f.Close()
	item, err := s.store.Stat(sha)
	if err != nil {
		s.reject(w, "missing")
		return
	}
	h := w.Header()
	h.Set("Content-Type", item.MIME)
	h.Set("Content-Length", strconv.FormatInt(item.Size, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, max-age=300")
	disp := "attachment"
	if item.Kind == "image" {
		disp = "inline"
	}
	h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": SafeName(name, item.MIME)}))
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.Copy(w, io.LimitReader(f, item.Size))
}
