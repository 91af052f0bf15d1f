// SPDX-License-Identifier: Apache-2.0

package media_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/media"
	"github.com/heraldgw/herald/pkg/message"
)

func shaOf(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestStorePutOpenRemove(t *testing.T) {
	dir := t.TempDir()
	s, err := media.OpenStore(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	data := pngHeader(1280, 720)
	it, err := s.Put(context.Background(), bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if it.SHA256 != shaOf(data) || it.Size != int64(len(data)) || it.MIME != "image/png" || it.Kind != message.MediaImage || it.Width != 1280 || it.Height != 720 {
		t.Fatalf("item %+v", it)
	}
	if want := filepath.Join(dir, it.SHA256[:2], it.SHA256); s.Path(it.SHA256) != want {
		t.Fatalf("path %s want %s", s.Path(it.SHA256), want)
	}
	if !s.Has(it.SHA256) || s.Usage() != int64(len(data)) {
		t.Fatalf("has %v usage %d", s.Has(it.SHA256), s.Usage())
	}
	f, err := s.Open(it.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
	// Same bytes again: no double accounting.
	if _, err := s.Put(context.Background(), bytes.NewReader(data), 1<<20); err != nil || s.Usage() != int64(len(data)) {
		t.Fatalf("second put: %v, usage %d", err, s.Usage())
	}
	// A damaged copy (truncated by hand) is replaced, accounted once.
	if err := os.WriteFile(s.Path(it.SHA256), data[:5], 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ = media.OpenStore(dir, 0)
	if _, err := s.Put(context.Background(), bytes.NewReader(data), 1<<20); err != nil || s.Usage() != int64(len(data)) {
		t.Fatalf("repair: %v, usage %d", err, s.Usage())
	}
	// Reopening recomputes usage.
	s2, err := media.OpenStore(dir, 0)
	if err != nil || s2.Usage() != int64(len(data)) {
		t.Fatalf("reopen: %v usage %d", err, s2.Usage())
	}
	if err := s.Remove(it.SHA256); err != nil || s.Has(it.SHA256) || s.Usage() != 0 {
		t.Fatalf("remove: %v", err)
	}
	if _, err := s.Open(it.SHA256); !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("open removed: %v", err)
	}
	for _, bad := range []string{"", "../../etc/passwd", strings.Repeat("A", 64), strings.Repeat("a", 63) + "/"} {
		if s.Path(bad) != "" || s.Has(bad) {
			t.Fatalf("bad sha %q accepted", bad)
		}
		if _, err := s.Open(bad); !errors.Is(err, media.ErrBadHash) {
			t.Fatalf("open %q: %v", bad, err)
		}
	}
}

func TestStoreTooLargeLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s, _ := media.OpenStore(dir, 0)
	_, err := s.Put(context.Background(), bytes.NewReader(make([]byte, 101)), 100)
	if !errors.Is(err, adapter.ErrTooLarge) {
		t.Fatalf("err %v", err)
	}
	if files := listFiles(t, dir); len(files) != 0 || s.Usage() != 0 {
		t.Fatalf("left %v usage %d", files, s.Usage())
	}
	// Exactly at the limit is fine.
	if _, err := s.Put(context.Background(), bytes.NewReader(make([]byte, 100)), 100); err != nil {
		t.Fatal(err)
	}
	// An endless reader costs limit+1 bytes.
	cr := &countingReader{}
	if _, err := s.Put(context.Background(), cr, 1000); !errors.Is(err, adapter.ErrTooLarge) || cr.n > 1001+32<<10 {
		t.Fatalf("endless: %v after %d bytes", err, cr.n)
	}
}

type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) { c.n += len(p); return len(p), nil }

func TestStoreCap(t *testing.T) {
	dir := t.TempDir()
	s, _ := media.OpenStore(dir, 150)
	var used, limit []int64
	s.OnUsage(func(u, l int64) { used, limit = append(used, u), append(limit, l) })
	a := bytes.Repeat([]byte("a"), 100)
	if _, err := s.Put(context.Background(), bytes.NewReader(a), 1000); err != nil {
		t.Fatal(err)
	}
	_, err := s.Put(context.Background(), bytes.NewReader(bytes.Repeat([]byte("b"), 100)), 1000)
	if !errors.Is(err, media.ErrStoreFull) {
		t.Fatalf("err %v", err)
	}
	if len(listFiles(t, dir)) != 1 || s.Usage() != 100 {
		t.Fatalf("files %v usage %d", listFiles(t, dir), s.Usage())
	}
	removed, freed, err := s.Prune(func(sha string) bool { return false })
	if err != nil || removed != 1 || freed != 100 || s.Usage() != 0 {
		t.Fatalf("prune %d %d %v usage %d", removed, freed, err, s.Usage())
	}
	if _, err := s.Put(context.Background(), bytes.NewReader(bytes.Repeat([]byte("b"), 100)), 1000); err != nil {
		t.Fatal(err)
	}
	// Told at once, after the first Put, the prune and the last Put; not
	// after the refused Put, which changed nothing.
	if want := []int64{0, 100, 0, 100}; !slices.Equal(used, want) || !slices.Equal(limit, []int64{150, 150, 150, 150}) {
		t.Fatalf("usage reported %v (limits %v), want %v", used, limit, want)
	}
}

func TestStorePruneKeeps(t *testing.T) {
	s, _ := media.OpenStore(t.TempDir(), 0)
	var shas []string
	for i := range 5 {
		it, err := s.Put(context.Background(), strings.NewReader(strings.Repeat("x", i+1)), 100)
		if err != nil {
			t.Fatal(err)
		}
		shas = append(shas, it.SHA256)
	}
	keep := map[string]bool{shas[1]: true, shas[3]: true}
	removed, freed, err := s.Prune(func(sha string) bool { return keep[sha] })
	if err != nil || removed != 3 || freed != 1+3+5 {
		t.Fatalf("prune %d %d %v", removed, freed, err)
	}
	for _, sha := range shas {
		if s.Has(sha) != keep[sha] {
			t.Fatalf("%s has=%v", sha, s.Has(sha))
		}
	}
}

func TestStoreCancelled(t *testing.T) {
	dir := t.TempDir()
	s, _ := media.OpenStore(dir, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, &countingReader{}, 1<<30); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if files := listFiles(t, dir); len(files) != 0 {
		t.Fatalf("left %v", files)
	}
}

// TestStoreNoSpace fills a 64 KiB tmpfs: the error is ErrNoSpace with the
// ENOSPC kept, and no file (temporary or final) stays.
func TestStoreNoSpace(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	s, err := media.OpenStore(filepath.Join(dir, "media"), 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Put(context.Background(), bytes.NewReader(make([]byte, 256<<10)), 1<<20)
	if !errors.Is(err, media.ErrNoSpace) {
		t.Fatalf("err %v, want ErrNoSpace", err)
	}
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("original error lost: %v", err)
	}
	if files := listFiles(t, dir); len(files) != 0 {
		t.Fatalf("left %v", files)
	}
	// Small files still fit afterwards.
	if _, err := s.Put(context.Background(), strings.NewReader("small"), 1<<20); err != nil {
		t.Fatal(err)
	}
}

func TestOpenStoreRemovesTemporaries(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := media.OpenStore(dir, 0)
	if err != nil || s.Usage() != 0 || len(listFiles(t, dir)) != 0 {
		t.Fatalf("%v usage %d files %v", err, s.Usage(), listFiles(t, dir))
	}
}
