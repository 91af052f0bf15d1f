// SPDX-License-Identifier: Apache-2.0

package version

import "runtime/debug"

var (
	// Version is the release, from git describe. "dev" for plain go build.
	Version = "dev"
	// Commit is the git commit.
	Commit = ""
)

// String returns "herald <version> (<commit>)".
func String() string {
	v, c := Version, Commit
	if c == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					c = s.Value[:12]
				}
			}
		}
	}
	if c == "" {
		return "herald " + v
	}
	return "herald " + v + " (" + c + ")"
}
