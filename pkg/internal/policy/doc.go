// SPDX-License-Identifier: Apache-2.0

// Package policy holds the repository's rules as tests: licence headers,
// one package comment per package, the dependency allowlist, and the
// import rules that keep adapters independent of the core and of each
// other. It has no code of its own.
package policy
