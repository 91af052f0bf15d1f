// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/store"
)

// msgStore is what the daemon needs of its message store, whichever the
// backend (store.backend): the dispatcher's store, the reads behind the
// admin API (a send's and a turn's status, the users report), the import
// of pairing approvals, and Close. The SQLite store and the JetStream
// store (pkg/store/jsstore) both have these methods.
type msgStore interface {
	dispatch.Store
	SendStatus(ctx context.Context, id int64) (store.SendRecord, error)
	TurnStatus(ctx context.Context, id int64) (store.TurnRecord, error)
	TopUsers(ctx context.Context, n int) ([]store.UserUsage, error)
	ImportPairingFile(ctx context.Context, path string) (added int, imported bool, err error)
	Close() error
}

// backend is the daemon's message store with what differs between the
// backends: whether it takes writes (for STATUS=, /readyz and herald
// status) and how it gives memory back after a burst.
type backend interface {
	msgStore
	// note is "" while the store takes writes, else why it does not, as
	// STATUS= and /readyz say it.
	note() string
	// report is the store's part of herald status.
	report() *adminapi.StoreReport
	// shrinkMemory drops caches the backend can rebuild.
	shrinkMemory(ctx context.Context) error
}

// sqliteBackend is the SQLite store (store.backend: sqlite, the default):
// it cannot be written when its disk is full or failing.
type sqliteBackend struct{ *store.Store }

var _ backend = sqliteBackend{}

func (b sqliteBackend) note() string {
	h := b.Health()
	if h.Writable {
		return ""
	}
	return "message store cannot be written (" + h.Cause + ", " + describeSpace(b.Path()) + ")"
}

func (b sqliteBackend) report() *adminapi.StoreReport {
	h := b.Health()
	r := &adminapi.StoreReport{Path: b.Path(), Writable: h.Writable, Since: h.Since, Cause: h.Cause}
	if h.Err != nil {
		r.Error = h.Err.Error()
	}
	if sp, err := store.FreeSpace(r.Path); err == nil {
		r.FreeBytes, r.TotalBytes = sp.Free, sp.Total
	}
	return r
}

func (b sqliteBackend) shrinkMemory(ctx context.Context) error { return b.ShrinkMemory(ctx) }
