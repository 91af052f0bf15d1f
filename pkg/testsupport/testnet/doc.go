// SPDX-License-Identifier: Apache-2.0

// Package testnet has network helpers for tests.
//
// RefusedAddr exists because the usual trick, listening on port 0 and
// closing the listener, frees the port: under parallel test load another
// test's server can bind it in between, and the "refused" connection then
// reaches that server. A socket that is bound but never listens keeps the
// port reserved while the kernel answers every connection with a reset.
package testnet
