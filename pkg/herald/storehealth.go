// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/store"
)

// onStoreHealth is the store's OnHealth hook: the journal events, the
// metrics, and a fresh STATUS= when the store stops or starts taking
// writes. It runs on the store's writer and does not block.
func (d *daemon) onStoreHealth(path string) func(store.Health) {
	var downSince time.Time
	return func(h store.Health) {
		d.metrics.StoreWritable(h.Writable)
		switch {
		case !h.Writable:
			d.metrics.StoreWriteError(h.Cause)
			if h.Failures > 1 {
				return
			}
			downSince = h.Since
			space := describeSpace(path)
			logging.Event(d.log, logging.MsgStoreUnwritable).WithFields(logrus.Fields{
				"path": path, "cause": h.Cause, "free": space,
			}).WithError(h.Err).Error(fmt.Sprintf("message store cannot be written: %s (%s); herald is degraded: new messages are not acknowledged and finished replies wait in memory until it can", h.Cause, space))
		default:
			logging.Event(d.log, logging.MsgStoreWritable).WithFields(logrus.Fields{
				"path": path, "downtime": time.Since(downSince).Round(time.Second),
			}).Info("message store can be written again; herald is no longer degraded")
		}
		d.board.poke()
	}
}

// describeSpace is "3 MiB free of 8 MiB", or why it is not known.
func describeSpace(path string) string {
	sp, err := store.FreeSpace(path)
	if err != nil {
		return "free space unknown: " + err.Error()
	}
	return sp.String()
}

// storeNote is the store's part of STATUS= and /readyz: "" while it takes
// writes, else e.g. "message store cannot be written (disk full, 0 B free
// of 8 MiB)".
func (d *daemon) storeNote() string {
	if d.store == nil {
		return ""
	}
	return d.store.note()
}

func (d *daemon) storeReport() *adminapi.StoreReport {
	if d.store == nil {
		return nil
	}
	r := d.store.report()
	if d.disp != nil {
		r.Unrecorded = d.disp.Stats().Unrecorded
	}
	return r
}

// poke makes the main loop send STATUS= now.
func (b *board) poke() {
	select {
	case b.changed <- struct{}{}:
	default:
	}
}
