// SPDX-License-Identifier: Apache-2.0

package media

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
)

// ErrOutsideDirs: a local path that is not under an allowed directory.
var ErrOutsideDirs = errors.New("media: path outside the allowed directories")

// LocalFile resolves an outbound "MEDIA: <path>" reference: path must be
// absolute; it is cleaned, its symlinks resolved, and the result must lie
// under one of dirs (themselves resolved) and be a regular file of at most
// maxBytes (0: no bound). It returns the resolved path and the size.
// A path with ".." components is refused outright, even when it would
// resolve inside a directory.
func LocalFile(path string, dirs []string, maxBytes int64) (resolved string, size int64, err error) {
	if !filepath.IsAbs(path) {
		return "", 0, fmt.Errorf("media: local file %q: %w: not absolute", path, adapter.ErrPermanent)
	}
	for _, part := range strings.Split(filepath.ToSlash(path), "/") {
		if part == ".." {
			return "", 0, fmt.Errorf("media: local file %q: %w: %w", path, adapter.ErrPermanent, ErrOutsideDirs)
		}
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(path))
	if err != nil {
		return "", 0, fmt.Errorf("media: local file: %w: %w", adapter.ErrPermanent, err)
	}
	inside := false
	for _, d := range dirs {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		rd, err := filepath.EvalSymlinks(filepath.Clean(d))
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(rd, real); err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel) {
			inside = true
			break
		}
	}
	if !inside {
		return "", 0, fmt.Errorf("media: local file %q: %w: %w", path, adapter.ErrPermanent, ErrOutsideDirs)
	}
	info, err := os.Stat(real)
	if err != nil {
		return "", 0, fmt.Errorf("media: local file: %w: %w", adapter.ErrPermanent, err)
	}
	if !info.Mode().IsRegular() {
		return "", 0, fmt.Errorf("media: local file %q: %w: not a regular file", path, adapter.ErrPermanent)
	}
	if maxBytes > 0 && info.Size() > maxBytes {
		return "", 0, fmt.Errorf("media: local file %q: %w: %d bytes, limit %d", path, adapter.ErrTooLarge, info.Size(), maxBytes)
	}
	return real, info.Size(), nil
}
