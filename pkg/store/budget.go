// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// Per-user budgets (limits.per_user): each user's messages to the agent
// are counted per calendar minute and per UTC day, here, so that a restart
// does not reset them.
var budgetSchema = []string{
	`CREATE TABLE IF NOT EXISTS user_budget(
		platform TEXT NOT NULL,
		user_id TEXT NOT NULL,
		period TEXT NOT NULL,
		start INTEGER NOT NULL,
		count INTEGER NOT NULL,
		notified INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY(platform, user_id, period)
	) STRICT`,
}

func init() {
	// Added after the first release, after every earlier table.
	schema = append(schema, budgetSchema...)
}

// Budget is a user's allowance; 0 means no limit.
type Budget struct {
	PerMinute int
	PerDay    int
}

// OverBudget says which limit a message went over.
type OverBudget struct {
	Period string // "minute" or "day"
	Limit  int
	// Until is when the user can continue.
	Until time.Time
	// Notify is set for the first message over the limit in its period:
	// the user is to be told, once.
	Notify bool
}

type budgetPeriod struct {
	name  string
	limit int
	start time.Time
	end   time.Time
}

func periods(b Budget, now time.Time) []budgetPeriod {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	minute := now.Truncate(time.Minute)
	return []budgetPeriod{
		{"day", b.PerDay, day, day.AddDate(0, 0, 1)},
		{"minute", b.PerMinute, minute, minute.Add(time.Minute)},
	}
}

// AddInboundBudget is AddInbound (state Pending) that also charges a new
// message to its sender's budget, in the same transaction. Over the budget
// the message is stored Refused, without its text, and over says why.
func (s *Store) AddInboundBudget(ctx context.Context, sessionKey string, m *message.Inbound, b Budget) (id int64, dup bool, over *OverBudget, err error) {
	body, err := json.Marshal(m)
	if err != nil {
		return 0, false, nil, fmt.Errorf("store: encode message: %w", err)
	}
	redacted := *m
	redacted.Text = ""
	rbody, err := json.Marshal(&redacted)
	if err != nil {
		return 0, false, nil, fmt.Errorf("store: encode message: %w", err)
	}
	received := m.ReceivedAt
	if received.IsZero() {
		received = s.now()
	}
	now := s.now()
	var r struct { // see AddInbound
		id   int64
		dup  bool
		over *OverBudget
	}
	err = s.write(ctx, func(tx wtx) error {
		r.over = nil
		res, err := tx.Exec(sqlInsertInbound, m.Platform, m.EventID, sessionKey, int(Pending), body, ms(received), nil)
		if err != nil {
			return fmt.Errorf("store: insert inbound: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			r.dup = true
			return tx.QueryRow(sqlSelectInboundID, m.Platform, m.EventID).Scan(&r.id)
		}
		r.dup = false
		if r.id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("store: insert inbound: %w", err)
		}
		ps := periods(b, now)
		counts := make([]int, len(ps))
		for i, p := range ps {
			var start int64
			var count, notified int64
			err := tx.QueryRow(`SELECT start, count, notified FROM user_budget WHERE platform = ? AND user_id = ? AND period = ?`,
				m.Platform, m.SenderID, p.name).Scan(&start, &count, &notified)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("store: read budget: %w", err)
			}
			if start != ms(p.start) {
				count, notified = 0, 0
			}
			counts[i] = int(count)
			if p.limit > 0 && int(count) >= p.limit && r.over == nil {
				r.over = &OverBudget{Period: p.name, Limit: p.limit, Until: p.end, Notify: notified != ms(p.start)}
				if _, err := tx.Exec(`INSERT INTO user_budget(platform, user_id, period, start, count, notified) VALUES(?, ?, ?, ?, ?, ?)
					ON CONFLICT(platform, user_id, period) DO UPDATE SET start = excluded.start, count = excluded.count, notified = excluded.notified`,
					m.Platform, m.SenderID, p.name, ms(p.start), count, ms(p.start)); err != nil {
					return fmt.Errorf("store: record budget: %w", err)
				}
			}
		}
		if r.over != nil {
			if _, err := tx.Exec(`UPDATE inbound SET state = ?, finished_at = ?, msg = ? WHERE id = ?`, int(Refused), ms(now), rbody, r.id); err != nil {
				return fmt.Errorf("store: refuse over budget: %w", err)
			}
			return nil
		}
		for i, p := range ps {
			if _, err := tx.Exec(`INSERT INTO user_budget(platform, user_id, period, start, count) VALUES(?, ?, ?, ?, ?)
				ON CONFLICT(platform, user_id, period) DO UPDATE SET count = CASE WHEN start = excluded.start THEN count + 1 ELSE 1 END,
					notified = CASE WHEN start = excluded.start THEN notified ELSE 0 END, start = excluded.start`,
				m.Platform, m.SenderID, p.name, ms(p.start), counts[i]+1); err != nil {
				return fmt.Errorf("store: charge budget: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, nil, err
	}
	return r.id, r.dup, r.over, nil
}

// UserUsage is one user's use of the agent in the current minute and day.
type UserUsage struct {
	Platform   string `json:"platform"`
	UserID     string `json:"user_id"`
	Today      int    `json:"turns_today"`
	ThisMinute int    `json:"turns_this_minute"`
}

// TopUsers returns the n users with the most messages to the agent today
// (UTC), most first.
func (s *Store) TopUsers(ctx context.Context, n int) ([]UserUsage, error) {
	ps := periods(Budget{}, s.now())
	rows, err := s.rdb.QueryContext(ctx, `SELECT d.platform, d.user_id, d.count,
		COALESCE((SELECT m.count FROM user_budget m WHERE m.platform = d.platform AND m.user_id = d.user_id AND m.period = 'minute' AND m.start = ?), 0)
		FROM user_budget d WHERE d.period = 'day' AND d.start = ? AND d.count > 0 ORDER BY d.count DESC, d.platform, d.user_id LIMIT ?`,
		ms(ps[1].start), ms(ps[0].start), n)
	if err != nil {
		return nil, fmt.Errorf("store: top users: %w", err)
	}
	defer rows.Close()
	var out []UserUsage
	for rows.Next() {
		var u UserUsage
		if err := rows.Scan(&u.Platform, &u.UserID, &u.Today, &u.ThisMinute); err != nil {
			return nil, fmt.Errorf("store: top users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// PruneBudgets deletes the counts of days before the current one.
func (s *Store) PruneBudgets(ctx context.Context) error {
	day := periods(Budget{}, s.now())[0].start
	return s.write(ctx, func(tx wtx) error {
		if _, err := tx.Exec(`DELETE FROM user_budget WHERE start < ?`, ms(day)); err != nil {
			return fmt.Errorf("store: prune budgets: %w", err)
		}
		return nil
	})
}
