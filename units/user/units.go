// SPDX-License-Identifier: Apache-2.0

package user

import (
	"embed"
	"io/fs"
	"sort"
)

//go:embed *.service *.socket
var files embed.FS

// Names lists the unit files, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// File returns the content of the unit file name.
func File(name string) ([]byte, error) {
	return files.ReadFile(name)
}
