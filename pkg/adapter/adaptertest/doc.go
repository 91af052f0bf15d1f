// SPDX-License-Identifier: Apache-2.0

// Package adaptertest provides the pieces every adapter test needs: an Inbox
// that records and deduplicates like herald's store, a recorder of status
// reports, and the bounded-stop check each adapter must pass in every state.
package adaptertest
