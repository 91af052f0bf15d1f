// SPDX-License-Identifier: Apache-2.0

// Package version reports which herald this is. The values are set at build
// time with -ldflags "-X github.com/heraldgw/herald/pkg/version.Version=…"
// (the Makefile uses the version the packages carry).
package version
