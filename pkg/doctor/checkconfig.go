// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/secret"
)

// Reload asks the running herald to reload its configuration and waits
// until it is done: it is ExecReload= in the unit, so that `systemctl
// reload` returns only when the new configuration is in effect (or was
// rejected, which is reported as a failure while herald keeps running).
// A secret file changed since herald started is not applied by a reload:
// Reload then warns that a restart is needed.
func Reload(ctx context.Context, socket string, out io.Writer) error {
	ans, err := adminapi.Reload(ctx, socket)
	if err != nil {
		return err
	}
	if !toJournal(out) {
		// In the journal (ExecReload=) herald's own "reload accepted"
		// says it already.
		fmt.Fprintf(out, "reloaded: %s\n", ans.Status)
	}
	warnChangedSecrets(ctx, socket, credentialsDirFor(socket), out)
	return nil
}

// CheckConfig validates a configuration file without running anything:
// syntax, keys, values, and that every secret it names can be read. Secrets
// named as systemd credentials are looked up in $CREDENTIALS_DIRECTORY when
// set (inside the service), else in credDir (where the packaged unit's
// LoadCredential= reads them from).
func CheckConfig(path, credDir string, out io.Writer) error {
	c, err := config.Load(path)
	if err != nil {
		return &herald.ExitError{Code: herald.ExitConfig, Err: err}
	}
	var problems []string
	refs := secretRefs(c)
	keys := make([]string, 0, len(refs))
	for k := range refs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := refs[k]
		if r.Credential != "" && os.Getenv("CREDENTIALS_DIRECTORY") == "" {
			r = secret.Ref{File: filepath.Join(credDir, r.Credential)}
		}
		if _, err := r.Read(); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %v", path, k, err))
		}
	}
	if len(problems) > 0 {
		return &herald.ExitError{Code: herald.ExitConfig, Err: errors.New(strings.Join(problems, "\n"))}
	}
	enabled := 0
	for _, p := range c.Platforms {
		if p.IsEnabled() {
			enabled++
		}
	}
	fmt.Fprintf(out, "%s: valid (%d platforms enabled, agent %s, %d secrets readable)\n", path, enabled, c.Agent.Kind, len(refs))
	if w := bootWarning(context.Background(), c); w != "" {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	return nil
}
