// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// maxFinishBackoff caps the pause between two attempts to record the end
// of a turn.
const maxFinishBackoff = 30 * time.Second

// record writes the end of a turn (store.Finish). When the store refuses
// (a full disk), the outcome is already here: the reply is kept, and only
// the write is tried again, with a backoff doubling from FinishRetryBackoff
// up to maxFinishBackoff, for as long as the dispatcher runs. The message
// stays tracked meanwhile, so the orphan sweep does not run its turn again,
// and its session's next message waits (it must see this exchange in its
// history). Each attempt is bounded by 30s. At the hard stop it gives up:
// the message is still pending, and the next instance runs the turn again.
func (d *Dispatcher) record(it *item, st store.State, gen int64, replies []message.Outbound, hist []store.HistoryEntry) ([]store.OutboxRecord, bool) {
	log := d.log.WithFields(logrus.Fields{"platform": it.msg.Platform, "session": it.key, "message": it.id})
	wait := d.opts.FinishRetryBackoff
	held := false
	defer func() {
		if held {
			d.mu.Lock()
			d.unrecorded--
			d.mu.Unlock()
		}
	}()
	for attempt := 1; ; attempt++ {
		if d.fenced(it.part) {
			// Cluster mode: the conversation's partition moved to another
			// node after this turn's stop bound; the new owner records it.
			log.Warn("turn ended after its partition moved to another node; its outcome is not recorded here, the message stays pending for the new owner")
			return nil, false
		}
		ctx, cancel := context.WithTimeout(d.bg(), 30*time.Second)
		recs, err := d.store.Finish(ctx, it.id, st, it.key, gen, replies, hist)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.WithField("attempts", attempt).Info("end of the turn recorded after the store failed; its reply goes out now")
			}
			return recs, true
		}
		what := "cannot record the end of a turn"
		if cause := store.Cause(err); cause != "" {
			what += " (" + cause + ")"
		}
		if attempt == 1 {
			held = true
			d.mu.Lock()
			d.unrecorded++
			d.mu.Unlock()
			log.WithError(err).WithField("retry_in", wait).Error(what + "; the reply is kept in memory and the write retried, the agent is not asked again")
		} else if entry := log.WithError(err).WithFields(logrus.Fields{"attempts": attempt, "retry_in": wait}); attempt&(attempt-1) == 0 {
			// Still visible at attempts 2, 4, 8…: a write failing for
			// another reason than the storage (a bug) holds the turn.
			entry.Warn(what + "; retrying")
		} else {
			entry.Debug(what + "; retrying")
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
			log.WithError(err).Warn(what + " before the stop; the message stays pending and the next instance runs its turn again")
			return nil, false
		}
		wait = min(2*wait, maxFinishBackoff)
	}
}

// prune is the hourly housekeeping of the store: finished messages past
// the retention (the dedupe window), history nobody will send again, and
// the file's free pages given back, so that the database stays bounded
// under a steady load.
func (d *Dispatcher) prune() {
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	now := time.Now()
	if n, err := d.store.Prune(ctx, now.Add(-d.opts.Retention)); err != nil {
		d.log.WithError(err).Warn("pruning finished messages failed")
	} else if n > 0 {
		d.log.WithField("rows", n).Debug("pruned finished messages")
	}
	d.pruneMedia(ctx, now)
	if n, err := d.store.PruneSends(ctx, now.Add(-d.opts.Retention)); err != nil {
		d.log.WithError(err).Warn("pruning sent messages failed")
	} else if n > 0 {
		d.log.WithField("messages", n).Debug("pruned sent messages")
	}
	if err := d.store.PruneBudgets(ctx); err != nil {
		d.log.WithError(err).Warn("pruning per-user counts failed")
	}
	if n, err := d.store.PruneHistory(ctx, now.Add(-d.opts.HistoryRetention), d.opts.HistoryMessages); err != nil {
		d.log.WithError(err).Warn("pruning session history failed")
	} else if n > 0 {
		d.log.WithField("entries", n).Debug("pruned session history")
	}
	if n, err := d.store.Compact(ctx); err != nil {
		d.log.WithError(err).Warn("compacting the message store failed")
	} else if n > 0 {
		d.log.WithField("pages", n).Debug("gave free pages of the message store back to the file system")
	}
}
