// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/paths"
	"github.com/heraldgw/herald/pkg/store"
)

// Thresholds of doctor's free-space check.
const (
	spaceFail = 1 << 20  // below: the next messages will not fit
	spaceWarn = 64 << 20 // below (or under 5%): a busy day may fill it
)

// storeChecks are doctor's checks of the message store: whether the
// running herald can write it, and the free space of its file system.
func storeChecks(cfg *config.Config, o Options, rep *adminapi.StatusReport) []Check {
	if rep != nil && rep.Store != nil && rep.Store.Backend == "nats" {
		return []Check{natsCheck(rep.Store)}
	}
	if rep == nil && cfg != nil && cfg.Store.Backend == "nats" {
		return nil // no file to check; the running herald reports NATS
	}
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
			out = append(out, Check{"store", Fail, detail, fix})
		} else {
			out = append(out, Check{"store", Pass, "writable: " + path, ""})
		}
	}
	switch {
	case spErr != nil:
		out = append(out, Check{"store free space", Warn, spErr.Error(), "check that " + dir + " exists (the unit's StateDirectory= creates it)"})
	case sp.Free < spaceFail:
		out = append(out, Check{"store free space", Fail, space, "free space on the file system holding " + dir})
	case sp.Free < spaceWarn || sp.Free < sp.Total/20:
		out = append(out, Check{"store free space", Warn, space, "free space on the file system holding " + dir + " before it fills up"})
	default:
		out = append(out, Check{"store free space", Pass, space, ""})
	}
	return out
}

// natsCheck is the check "nats": whether the running herald's JetStream
// store is open and its NATS connection up.
func natsCheck(s *adminapi.StoreReport) Check {
	if s.Writable {
		return Check{"nats", Pass, "connected: " + s.Path, ""}
	}
	detail := fmt.Sprintf("%s since %s (%s ago): %s", s.Cause, s.Since.Format(time.RFC3339), time.Since(s.Since).Round(time.Second), s.Path)
	if s.Error != "" {
		detail += "; error: " + s.Error
	}
	if s.Unrecorded > 0 {
		detail += fmt.Sprintf("; %d finished turns keep their reply in memory", s.Unrecorded)
	}
	return Check{"nats", Fail, detail, "check that the NATS servers of store.nats.urls run and are reachable from this host (nats server check, firewall, TLS and credentials); herald retries by itself: platforms redeliver what it refused meanwhile"}
}
