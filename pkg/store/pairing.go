// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// DM pairing: a user a platform does not know asks for access with a short
// code in a direct message, and the operator approves the code. Pending
// codes and approvals live here, not in the configuration, so they survive
// restarts and reloads.
var pairingSchema = []string{
	`CREATE TABLE IF NOT EXISTS pairing_requests(
		platform TEXT NOT NULL,
		user_id TEXT NOT NULL,
		code TEXT NOT NULL,
		chat_id TEXT NOT NULL,
		user_name TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		PRIMARY KEY(platform, user_id),
		UNIQUE(platform, code)
	) STRICT`,
	`CREATE TABLE IF NOT EXISTS pairing_approved(
		platform TEXT NOT NULL,
		user_id TEXT NOT NULL,
		approved_at INTEGER NOT NULL,
		PRIMARY KEY(platform, user_id)
	) STRICT`,
}

func init() {
	// Added after the first release, after every earlier table.
	schema = append(schema, pairingSchema...)
}

var (
	// ErrPairingFull: the platform has as many pending codes as allowed.
	ErrPairingFull = errors.New("store: too many pending pairing requests")
	// ErrNoPairingCode: no pending, unexpired request has the code.
	ErrNoPairingCode = errors.New("store: no pending pairing request with this code")
)

// PairingRequest is a pending request for access.
type PairingRequest struct {
	Platform  string    `json:"platform"`
	UserID    string    `json:"user_id"`
	UserName  string    `json:"user_name,omitempty"`
	ChatID    string    `json:"chat_id"`
	Code      string    `json:"code"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PairedUser is an approved user.
type PairedUser struct {
	Platform   string    `json:"platform"`
	UserID     string    `json:"user_id"`
	ApprovedAt time.Time `json:"approved_at"`
}

// RequestPairing returns the pending code of (platform, userID), or gives
// the user a new code (newCode makes one) valid for ttl. It drops expired
// requests first, and refuses a new one with ErrPairingFull when the
// platform has maxPending pending already. created reports a new code.
func (s *Store) RequestPairing(ctx context.Context, req PairingRequest, ttl time.Duration, maxPending int, newCode func() string) (code string, created bool, err error) {
	now := s.now()
	var r struct {
		code    string
		created bool
	}
	err = s.write(ctx, func(tx wtx) error {
		r.code, r.created = "", false
		if _, err := tx.Exec(`DELETE FROM pairing_requests WHERE expires_at <= ?`, ms(now)); err != nil {
			return fmt.Errorf("store: drop expired pairing requests: %w", err)
		}
		err := tx.QueryRow(`SELECT code FROM pairing_requests WHERE platform = ? AND user_id = ?`, req.Platform, req.UserID).Scan(&r.code)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: read pairing request: %w", err)
		}
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM pairing_requests WHERE platform = ?`, req.Platform).Scan(&n); err != nil {
			return fmt.Errorf("store: count pairing requests: %w", err)
		}
		if n >= maxPending {
			return ErrPairingFull
		}
		for try := 0; ; try++ {
			c := newCode()
			res, err := tx.Exec(`INSERT INTO pairing_requests(platform, user_id, code, chat_id, user_name, created_at, expires_at)
				VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
				req.Platform, req.UserID, c, req.ChatID, req.UserName, ms(now), ms(now.Add(ttl)))
			if err != nil {
				return fmt.Errorf("store: add pairing request: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				r.code, r.created = c, true
				return nil
			}
			if try == 10 {
				return errors.New("store: add pairing request: no free code")
			}
		}
	})
	if err != nil {
		return "", false, err
	}
	return r.code, r.created, nil
}

// ApprovePairing approves the pending, unexpired request with code on
// platform: the user is paired and the request removed. It returns the
// request.
func (s *Store) ApprovePairing(ctx context.Context, platform, code string) (PairingRequest, error) {
	now := ms(s.now())
	var r PairingRequest
	err := s.write(ctx, func(tx wtx) error {
		var created, expires int64
		err := tx.QueryRow(`SELECT user_id, user_name, chat_id, created_at, expires_at FROM pairing_requests
			WHERE platform = ? AND code = ? AND expires_at > ?`, platform, code, now).Scan(&r.UserID, &r.UserName, &r.ChatID, &created, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNoPairingCode
		}
		if err != nil {
			return fmt.Errorf("store: read pairing request: %w", err)
		}
		r.Platform, r.Code, r.CreatedAt, r.ExpiresAt = platform, code, time.UnixMilli(created), time.UnixMilli(expires)
		if _, err := tx.Exec(`DELETE FROM pairing_requests WHERE platform = ? AND user_id = ?`, platform, r.UserID); err != nil {
			return fmt.Errorf("store: remove pairing request: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO pairing_approved(platform, user_id, approved_at) VALUES(?, ?, ?)
			ON CONFLICT(platform, user_id) DO UPDATE SET approved_at = excluded.approved_at`, platform, r.UserID, now); err != nil {
			return fmt.Errorf("store: approve pairing: %w", err)
		}
		return nil
	})
	return r, err
}

// RevokePairing removes the approval of (platform, userID), and any
// pending request of the user. It reports whether the user was approved.
func (s *Store) RevokePairing(ctx context.Context, platform, userID string) (bool, error) {
	var r struct{ found bool }
	err := s.write(ctx, func(tx wtx) error {
		res, err := tx.Exec(`DELETE FROM pairing_approved WHERE platform = ? AND user_id = ?`, platform, userID)
		if err != nil {
			return fmt.Errorf("store: revoke pairing: %w", err)
		}
		n, _ := res.RowsAffected()
		r.found = n > 0
		if _, err := tx.Exec(`DELETE FROM pairing_requests WHERE platform = ? AND user_id = ?`, platform, userID); err != nil {
			return fmt.Errorf("store: revoke pairing: %w", err)
		}
		return nil
	})
	return r.found, err
}

// Pairings lists the pending, unexpired requests and the approved users,
// by platform and time.
func (s *Store) Pairings(ctx context.Context) ([]PairingRequest, []PairedUser, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT platform, user_id, user_name, chat_id, code, created_at, expires_at
		FROM pairing_requests WHERE expires_at > ? ORDER BY platform, created_at`, ms(s.now()))
	if err != nil {
		return nil, nil, fmt.Errorf("store: list pairing requests: %w", err)
	}
	defer rows.Close()
	var reqs []PairingRequest
	for rows.Next() {
		var r PairingRequest
		var c, e int64
		if err := rows.Scan(&r.Platform, &r.UserID, &r.UserName, &r.ChatID, &r.Code, &c, &e); err != nil {
			return nil, nil, fmt.Errorf("store: list pairing requests: %w", err)
		}
		r.CreatedAt, r.ExpiresAt = time.UnixMilli(c), time.UnixMilli(e)
		reqs = append(reqs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: list pairing requests: %w", err)
	}
	arows, err := s.rdb.QueryContext(ctx, `SELECT platform, user_id, approved_at FROM pairing_approved ORDER BY platform, approved_at`)
	if err != nil {
		return nil, nil, fmt.Errorf("store: list paired users: %w", err)
	}
	defer arows.Close()
	var users []PairedUser
	for arows.Next() {
		var u PairedUser
		var a int64
		if err := arows.Scan(&u.Platform, &u.UserID, &a); err != nil {
			return nil, nil, fmt.Errorf("store: list paired users: %w", err)
		}
		u.ApprovedAt = time.UnixMilli(a)
		users = append(users, u)
	}
	return reqs, users, arows.Err()
}

// PairingImportFile is the name of the file, next to the configuration,
// that carries approvals made elsewhere (herald migrate hermes writes it)
// into the store. herald imports it once at start.
const PairingImportFile = "pairing-import.json"

// PairingImport is the content of PairingImportFile.
type PairingImport struct {
	// Approved lists the users to approve, by platform.
	Approved map[string][]string `json:"approved"`
}

// ReadPairingImport reads and checks the PairingImport file at path, for
// a store to import: the users, and the hex SHA-256 of the file's bytes,
// which the store records so that the file is imported once. A missing
// file is found false with no error; an unknown field, or an empty
// platform or user id, is an error.
func ReadPairingImport(path string) (in PairingImport, digest string, found bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return PairingImport{}, "", false, nil
	}
	if err != nil {
		return PairingImport{}, "", false, fmt.Errorf("store: read pairing import: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return PairingImport{}, "", false, fmt.Errorf("store: read pairing import %s: %w", path, err)
	}
	for p, users := range in.Approved {
		for _, u := range users {
			if p == "" || u == "" {
				return PairingImport{}, "", false, fmt.Errorf("store: read pairing import %s: empty platform or user id", path)
			}
		}
	}
	sum := sha256.Sum256(data)
	return in, hex.EncodeToString(sum[:]), true, nil
}

func init() {
	schema = append(schema, `CREATE TABLE IF NOT EXISTS pairing_imports(
		digest TEXT PRIMARY KEY,
		imported_at INTEGER NOT NULL
	) STRICT`)
}

// ImportPairingFile approves the users listed in the PairingImport file at
// path, once: the file's SHA-256 is recorded in the same transaction, so a
// second start (or a crash and a restart) imports nothing, and a user
// revoked since stays revoked. Users approved already keep their approval.
// A missing file is no error. It returns the users added and whether the
// file was new.
func (s *Store) ImportPairingFile(ctx context.Context, path string) (added int, imported bool, err error) {
	in, digest, found, err := ReadPairingImport(path)
	if err != nil || !found {
		return 0, false, err
	}
	now := ms(s.now())
	var r struct {
		added int
		fresh bool
	}
	err = s.write(ctx, func(tx wtx) error {
		r.added, r.fresh = 0, false
		res, err := tx.Exec(`INSERT INTO pairing_imports(digest, imported_at) VALUES(?, ?) ON CONFLICT DO NOTHING`, digest, now)
		if err != nil {
			return fmt.Errorf("store: record pairing import: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		r.fresh = true
		for p, users := range in.Approved {
			for _, u := range users {
				res, err := tx.Exec(`INSERT INTO pairing_approved(platform, user_id, approved_at) VALUES(?, ?, ?)
					ON CONFLICT(platform, user_id) DO NOTHING`, p, u, now)
				if err != nil {
					return fmt.Errorf("store: import pairing: %w", err)
				}
				if n, _ := res.RowsAffected(); n == 1 {
					r.added++
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return r.added, r.fresh, nil
}
