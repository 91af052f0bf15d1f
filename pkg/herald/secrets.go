// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/logging"
)

// secretFile is a file holding one secret the configuration names.
type secretFile struct {
	Key  string // the configuration key, e.g. platforms.telegram.token
	Path string // where the operator keeps the secret
	// Credential: a systemd credential (Path is in the credentials
	// directory), not a {file: PATH} that herald reads itself.
	Credential bool
}

// secretFiles lists the files behind cfg's secrets, sorted by key: a
// {credential: NAME} is credDir/NAME, the file systemd copies into
// $CREDENTIALS_DIRECTORY when the service starts; a {file: PATH} is PATH,
// which herald reads when it builds the adapter or agent that uses it.
func secretFiles(cfg *config.Config, credDir string) []secretFile {
	refs := secretRefs(cfg)
	out := make([]secretFile, 0, len(refs))
	for k, r := range refs {
		path := r.File
		if r.Credential != "" {
			path = filepath.Join(credDir, r.Credential)
		}
		out = append(out, secretFile{Key: k, Path: path, Credential: r.Credential != ""})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// changedSecret is a secret file changed after herald started.
type changedSecret struct {
	secretFile
	Changed time.Time
}

// changedSecrets returns the files whose inode changed after since (when
// herald started), and those it may not look at. A running herald keeps
// the secrets it read at start: systemd copies credentials into
// $CREDENTIALS_DIRECTORY when the service starts, and a reload keeps every
// adapter whose settings did not change, so a changed file takes effect
// only after a restart. The change time (ctime) is compared, not the
// modification time: it moves on every write, rename or chmod, and unlike
// mtime no tool can set it back (cp -p, touch -d, rsync -t).
func changedSecrets(files []secretFile, since time.Time, stat func(string) (os.FileInfo, error)) (changed []changedSecret, denied []secretFile) {
	for _, f := range files {
		fi, err := stat(f.Path)
		switch {
		case errors.Is(err, fs.ErrPermission):
			denied = append(denied, f)
			continue
		case err != nil:
			continue // missing: the credential checks say so
		}
		if t := changeTime(fi); t.After(since) {
			changed = append(changed, changedSecret{f, t})
		}
	}
	return changed, denied
}

// changeTime is fi's ctime, or its mtime where the system gives none.
func changeTime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Unix())
	}
	return fi.ModTime()
}

// stampFormat shows change and start times to the millisecond: a file
// rotated in the second herald started must not read as changed "at" its
// start.
const stampFormat = "2006-01-02T15:04:05.000Z07:00"

// restartAdvice is the fix for secrets changed under a running herald.
func restartAdvice(unit string) string {
	return "restart to apply: systemctl restart " + unit +
		" (systemd copies credentials when the service starts; a reload does not re-read them)"
}

// describeChanged says which secret files changed after start.
func describeChanged(changed []changedSecret, started time.Time) string {
	parts := make([]string, len(changed))
	for i, c := range changed {
		parts[i] = fmt.Sprintf("%s (%s) changed at %s", c.Path, c.Key, c.Changed.Format(stampFormat))
	}
	return strings.Join(parts, "; ") + fmt.Sprintf(", after herald started (%s): herald still uses the old %s",
		started.Format(stampFormat), pluralize(len(changed), "secret", "secrets"))
}

// secretsCurrentCheck is doctor's check that the running herald uses the
// secrets on disk.
func secretsCurrentCheck(files []secretFile, started time.Time, unit string, stat func(string) (os.FileInfo, error)) Check {
	const name = "secrets in use"
	changed, denied := changedSecrets(files, started, stat)
	switch {
	case len(changed) > 0:
		return Check{name, "WARN", describeChanged(changed, started), restartAdvice(unit)}
	case len(denied) > 0:
		return Check{name, "SKIP", fmt.Sprintf("cannot tell whether %d secret %s changed since herald started: permission denied: this check needs root",
			len(denied), pluralize(len(denied), "file", "files")), "run it as root: sudo herald doctor"}
	}
	return Check{name, "PASS", fmt.Sprintf("no secret file changed since herald started (%s)", started.Format(stampFormat)), ""}
}

// warnChangedSecrets is the end of `herald reload`: it asks the running
// herald for its configuration file and start time and warns, on out, for
// every secret file changed since, which the reload did not apply. Under
// systemd its output is in the unit's journal (ExecReload=), as a warning.
// It never fails the reload, which was applied.
func warnChangedSecrets(ctx context.Context, socket, credDir string, out io.Writer) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rep, err := fetchStatus(ctx, socket)
	if err != nil || !filepath.IsAbs(rep.Config) {
		return // the built-in default names no secret files
	}
	cfg, err := config.Load(rep.Config)
	if err != nil {
		return
	}
	changed, denied := changedSecrets(secretFiles(cfg, credDir), rep.StartedAt, os.Stat)
	prefix := ""
	if toJournal(out) {
		prefix = "<4>" // PRIORITY=4 (warning) in the journal
	}
	if len(changed) > 0 {
		fmt.Fprintf(out, "%swarning: %s; %s\n", prefix, describeChanged(changed, rep.StartedAt), restartAdvice(cfg.Unit))
	}
	if len(denied) > 0 {
		fmt.Fprintf(out, "%snote: cannot tell whether %d secret %s changed since herald started (permission denied); herald doctor as root can\n",
			prefix, len(denied), pluralize(len(denied), "file", "files"))
	}
}

// toJournal reports whether out is the journal stream systemd connected
// (a command run as ExecReload=).
func toJournal(out io.Writer) bool {
	f, ok := out.(*os.File)
	return ok && logging.IsJournalStream(f)
}
