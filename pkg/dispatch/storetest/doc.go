// SPDX-License-Identifier: Apache-2.0

// Package storetest is the contract of dispatch.Store as a test suite that
// runs against any backend: the SQLite store and the JetStream store run
// the same tests. Only tests import it.
package storetest
