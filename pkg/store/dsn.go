// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"
	"net/url"
	"path/filepath"
)

// dsn builds the SQLite URI for the database file at path with the given
// query (already encoded). The path is escaped: SQLite reads a URI, where a
// literal '?' would start the options (and let a path inject its own) and a
// '#' would end the file name, so that "/var/lib/a#b.db" opened "/var/lib/a".
func dsn(path, query string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("store: %s: %w", path, err)
	}
	u := url.URL{Scheme: "file", Path: abs}
	s := u.String()
	if query != "" {
		s += "?" + query
	}
	return s, nil
}
