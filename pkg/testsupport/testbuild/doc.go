// SPDX-License-Identifier: Apache-2.0

// Package testbuild names the build tag of herald's test builds. Code built
// only with the tag (the fault-injection platform, the main-loop wedge) is
// absent from the production binary that `make build` and the packages
// ship; the end-to-end suites and herald-bench build herald with
//
//	go build -tags heraldtest ./cmd/herald
//
// when they need it.
package testbuild

// Tag is the build tag of test builds.
const Tag = "heraldtest"
