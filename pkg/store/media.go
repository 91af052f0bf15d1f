// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Fetched media of inbound messages.
//
// An inbound message's attachments (platform references) are stored inside
// the message itself, before the platform's ack. Once herald has fetched
// one into the media store, or given up on it, the outcome is recorded
// here, so that a turn run again after a restart neither downloads the file
// a second time nor tells the user twice that it failed. The rows go with
// their message: a trigger deletes them when the inbound row is pruned.
var mediaSchema = []string{
	`CREATE TABLE IF NOT EXISTS media_fetch(
		inbound_id INTEGER NOT NULL,
		idx INTEGER NOT NULL,
		sha256 TEXT NOT NULL DEFAULT '',
		size INTEGER NOT NULL DEFAULT 0,
		mime TEXT NOT NULL DEFAULT '',
		error TEXT NOT NULL DEFAULT '',
		fetched_at INTEGER NOT NULL,
		PRIMARY KEY(inbound_id, idx)
	) STRICT`,
	`CREATE TRIGGER IF NOT EXISTS media_fetch_pruned AFTER DELETE ON inbound
		BEGIN DELETE FROM media_fetch WHERE inbound_id = old.id; END`,
}

func init() { schema = append(schema, mediaSchema...) }

// MediaFetch is the outcome of fetching attachment Index of an inbound
// message: the bytes' SHA256 (hex), size and sniffed type, or the error
// that made herald give up (then SHA256 is empty).
type MediaFetch struct {
	Index  int
	SHA256 string
	Size   int64
	MIME   string
	Error  string
	At     time.Time
}

// RecordMediaFetch stores, and commits before it returns, the outcome of
// one attachment's fetch. A second record for the same attachment
// replaces the first.
func (s *Store) RecordMediaFetch(ctx context.Context, inboundID int64, f MediaFetch) error {
	return s.write(ctx, func(tx wtx) error {
		if _, err := tx.Exec(`INSERT INTO media_fetch(inbound_id, idx, sha256, size, mime, error, fetched_at) VALUES(?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(inbound_id, idx) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, mime = excluded.mime, error = excluded.error, fetched_at = excluded.fetched_at`,
			inboundID, f.Index, f.SHA256, f.Size, f.MIME, f.Error, ms(f.At)); err != nil {
			return fmt.Errorf("store: record media fetch: %w", err)
		}
		return nil
	})
}

// MediaFetches returns the recorded fetch outcomes of inbound message
// inboundID by attachment index.
func (s *Store) MediaFetches(ctx context.Context, inboundID int64) (map[int]MediaFetch, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT idx, sha256, size, mime, error, fetched_at FROM media_fetch WHERE inbound_id = ?`, inboundID)
	if err != nil {
		return nil, fmt.Errorf("store: query media fetches: %w", err)
	}
	defer rows.Close()
	out := map[int]MediaFetch{}
	for rows.Next() {
		var f MediaFetch
		var at int64
		if err := rows.Scan(&f.Index, &f.SHA256, &f.Size, &f.MIME, &f.Error, &at); err != nil {
			return nil, fmt.Errorf("store: scan media fetches: %w", err)
		}
		f.At = time.UnixMilli(at)
		out[f.Index] = f
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query media fetches: %w", err)
	}
	return out, nil
}

// ReferencedMedia returns the SHA256 of every media file herald still needs:
// the fetched attachments of messages kept by message retention (a turn of
// a pending message will read them; a finished one may be asked for again
// through its signed link) and the media of outbox records not yet
// delivered. The media store's prune keeps these files.
func (s *Store) ReferencedMedia(ctx context.Context) (map[string]bool, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT sha256 FROM media_fetch WHERE sha256 <> ''
		UNION SELECT json_extract(msg, '$.media.sha256') FROM outbox WHERE state = 0 AND json_extract(msg, '$.media.sha256') IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("store: query referenced media: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var h sql.NullString
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("store: scan referenced media: %w", err)
		}
		if h.Valid && h.String != "" {
			out[h.String] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query referenced media: %w", err)
	}
	return out, nil
}
