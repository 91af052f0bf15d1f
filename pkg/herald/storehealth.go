// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/paths"
	"github.com/heraldgw/herald/pkg/store"
)

// StoreReport is the message store's state in StatusReport.
type StoreReport struct {
	Path     string    `json:"path"`
	Writable bool      `json:"writable"`
	Since    time.Time `json:"since"`
	// Cause ("disk full") and Error describe why it cannot be written.
	Cause string `json:"cause,omitempty"`
	Error string `json:"error,omitempty"`
	// FreeBytes and TotalBytes are the space on its file system.
	FreeBytes  uint64 `json:"free_bytes"`
	TotalBytes uint64 `json:"total_bytes"`
	// Unrecorded counts finished turns whose reply waits in memory for
	// the store to take it.
	Unrecorded int `json:"unrecorded_turns,omitempty"`
}

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
	h := d.store.Health()
	if h.Writable {
		return ""
	}
	return fmt.Sprintf("message store cannot be written (%s, %s)", h.Cause, describeSpace(d.store.Path()))
}

func (d *daemon) storeReport() *StoreReport {
	if d.store == nil {
		return nil
	}
	h := d.store.Health()
	r := &StoreReport{Path: d.store.Path(), Writable: h.Writable, Since: h.Since, Cause: h.Cause}
	if h.Err != nil {
		r.Error = h.Err.Error()
	}
	if sp, err := store.FreeSpace(r.Path); err == nil {
		r.FreeBytes, r.TotalBytes = sp.Free, sp.Total
	}
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

// printStore is the store's line in `herald status`.
func printStore(w io.Writer, r *StoreReport) {
	if r == nil {
		return
	}
	space := store.Space{Free: r.FreeBytes, Total: r.TotalBytes}
	if r.Writable {
		fmt.Fprintf(w, "  store %s: writable, %s\n", r.Path, space)
		return
	}
	fmt.Fprintf(w, "  store %s: DEGRADED, cannot be written since %s (%s ago): %s, %s\n",
		r.Path, r.Since.Format(time.RFC3339), time.Since(r.Since).Round(time.Second), r.Cause, space)
	if r.Unrecorded > 0 {
		fmt.Fprintf(w, "    %d finished turns keep their reply in memory until the store takes it\n", r.Unrecorded)
	}
	fmt.Fprintf(w, "    error: %s\n", r.Error)
}

// Thresholds of doctor's free-space check.
const (
	spaceFail = 1 << 20  // below: the next messages will not fit
	spaceWarn = 64 << 20 // below (or under 5%): a busy day may fill it
)

// storeChecks are doctor's checks of the message store: whether the
// running herald can write it, and the free space of its file system.
func storeChecks(cfg *config.Config, o InspectOptions, rep *StatusReport) []Check {
	path := ""
	switch {
	case rep != nil && rep.Store != nil:
		path = rep.Store.Path
	case cfg != nil:
		path = cfg.Store.Path
		if o.ConfigPath == paths.ConfigFile && path == filepath.Join(".herald", "herald.db") {
			// Outside the service $STATE_DIRECTORY is not set; the
			// packaged unit's StateDirectory= is here.
			path = paths.StoreFile
		}
	default:
		return nil
	}
	dir := filepath.Dir(path)
	var out []Check
	sp, spErr := store.FreeSpace(path)
	space := "free space unknown"
	if spErr == nil {
		space = sp.String() + " on " + dir
	}
	if rep != nil && rep.Store != nil {
		if s := rep.Store; !s.Writable {
			fix := "free space on the file system holding " + dir + " (see what fills it: du -xsh " + dir + "/* /var/log /var/cache); herald notices by itself, no restart needed: platforms redeliver what was not acknowledged and kept replies are written and sent"
			switch s.Cause {
			case "read-only file system", "read-only database", "cannot open the database file":
				fix = "make " + path + " and " + dir + " writable by the herald user (mount options, ReadWritePaths=, ownership); herald notices by itself"
			case "I/O error":
				fix = "check the disk (journalctl -k for I/O errors); herald retries by itself"
			}
			detail := fmt.Sprintf("cannot be written since %s (%s ago): %s, %s; error: %s", s.Since.Format(time.RFC3339), time.Since(s.Since).Round(time.Second), s.Cause, space, s.Error)
			if s.Unrecorded > 0 {
				detail += fmt.Sprintf("; %d finished turns keep their reply in memory", s.Unrecorded)
			}
			out = append(out, Check{"store", "FAIL", detail, fix})
		} else {
			out = append(out, Check{"store", "PASS", "writable: " + path, ""})
		}
	}
	switch {
	case spErr != nil:
		out = append(out, Check{"store free space", "WARN", spErr.Error(), "check that " + dir + " exists (the unit's StateDirectory= creates it)"})
	case sp.Free < spaceFail:
		out = append(out, Check{"store free space", "FAIL", space, "free space on the file system holding " + dir})
	case sp.Free < spaceWarn || sp.Free < sp.Total/20:
		out = append(out, Check{"store free space", "WARN", space, "free space on the file system holding " + dir + " before it fills up"})
	default:
		out = append(out, Check{"store free space", "PASS", space, ""})
	}
	return out
}
