// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"
)

// walSizeLimit is the size the write-ahead log is cut back to after a
// checkpoint (PRAGMA journal_size_limit): a burst may grow it, it does not
// keep that size.
const walSizeLimit = 16 << 20

// vacuumSlack is the number of free pages Compact leaves in the file for
// the next writes (1 MiB of 4 KiB pages): returning every page only to
// grow the file again at the next message would be churn.
const vacuumSlack = 256

// enableIncrementalVacuum makes the database give free pages back to the
// file system on Compact (auto_vacuum=INCREMENTAL). The setting takes
// effect only in a database without pages yet, or with a VACUUM, which
// rewrites the file: a new store (already given its first page by
// journal_mode=WAL) is vacuumed at once, cheaply; a database created by an
// earlier herald is converted once, which needs free space about its size
// and takes about a second per 100 MiB. If that fails, for lack of space
// say, the store works as before: free pages are reused, not given back,
// and the conversion is tried again at the next start.
func enableIncrementalVacuum(ctx context.Context, db *sql.DB) error {
	const incremental = 2
	var mode int
	if err := db.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return err
	}
	if mode == incremental {
		return nil
	}
	if _, err := db.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		return err
	}
	_, _ = db.ExecContext(ctx, "VACUUM")
	return nil
}

// PruneHistory deletes session history that will not be sent to the agent
// again: entries older than before (store.history_retention), and in every
// session all but its newest keep entries (agent.history_messages, the
// most a turn sends). It returns the number of entries deleted.
func (s *Store) PruneHistory(ctx context.Context, before time.Time, keep int) (int64, error) {
	var r struct{ n int64 } // see AddInbound
	err := s.write(ctx, func(tx wtx) error {
		res, err := tx.Exec(`DELETE FROM history WHERE created_at < ? OR id IN (
			SELECT id FROM (
				SELECT id, ROW_NUMBER() OVER (PARTITION BY session_key, generation ORDER BY id DESC) AS n FROM history
			) WHERE n > ?)`, ms(before), max(keep, 0))
		if err != nil {
			return fmt.Errorf("store: prune history: %w", err)
		}
		r.n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, err
	}
	return r.n, nil
}

// Compact gives the free pages of the database file, beyond a small slack,
// back to the file system (incremental vacuum), so that the file shrinks
// after pruning instead of staying at its largest size. It returns the
// number of pages given back.
func (s *Store) Compact(ctx context.Context) (int64, error) {
	var r struct{ n int64 } // see AddInbound
	err := s.write(ctx, func(tx wtx) error {
		var free int64
		if err := tx.QueryRow(`PRAGMA freelist_count`).Scan(&free); err != nil {
			return fmt.Errorf("store: compact: %w", err)
		}
		if free <= vacuumSlack {
			return nil
		}
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, free-vacuumSlack)); err != nil {
			return fmt.Errorf("store: compact: %w", err)
		}
		var after int64
		if err := tx.QueryRow(`PRAGMA freelist_count`).Scan(&after); err != nil {
			return fmt.Errorf("store: compact: %w", err)
		}
		r.n = free - after
		return nil
	})
	if err != nil {
		return 0, err
	}
	if r.n == 0 {
		return 0, nil
	}
	// The vacuum went through the write-ahead log (as large as the pages it
	// moved): copy it into the database file, which then shrinks, and
	// empty it. This waits for readers still on an older snapshot (queries
	// take milliseconds; busy_timeout bounds the wait).
	if _, err := s.wdb.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return r.n, fmt.Errorf("store: checkpoint: %w", err)
	}
	return r.n, nil
}

// Size is the bytes the store takes on disk: the database file and its
// write-ahead log.
func (s *Store) Size() (int64, error) {
	var total int64
	for _, p := range []string{s.path, s.path + "-wal"} {
		fi, err := os.Stat(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("store: size: %w", err)
		}
		total += fi.Size()
	}
	return total, nil
}

// ShrinkMemory frees the page cache of the writer's connection and closes
// idle read connections (with their caches): after a burst the cache
// holds pages no longer needed, and they count in herald's RSS.
func (s *Store) ShrinkMemory(ctx context.Context) error {
	if _, err := s.wdb.ExecContext(ctx, `PRAGMA shrink_memory`); err != nil {
		return fmt.Errorf("store: shrink memory: %w", err)
	}
	s.rdb.SetMaxIdleConns(0)
	s.rdb.SetMaxIdleConns(readConns)
	return nil
}

// Prune deletes finished inbound messages and finished outbox entries older
// than before. Pending work is never pruned. The dedupe window is therefore
// the retention time.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	var r struct{ n int64 } // see AddInbound
	cut := ms(before)
	err := s.write(ctx, func(tx wtx) error {
		res, err := tx.Exec(`DELETE FROM outbox WHERE state <> 0 AND finished_at < ?`, cut)
		if err != nil {
			return fmt.Errorf("store: prune outbox: %w", err)
		}
		a, _ := res.RowsAffected()
		res, err = tx.Exec(`DELETE FROM inbound WHERE state <> 0 AND finished_at < ? AND id NOT IN (SELECT inbound_id FROM outbox WHERE inbound_id IS NOT NULL)`, cut)
		if err != nil {
			return fmt.Errorf("store: prune inbound: %w", err)
		}
		b, _ := res.RowsAffected()
		r.n = a + b
		return nil
	})
	if err != nil {
		return 0, err
	}
	return r.n, nil
}
