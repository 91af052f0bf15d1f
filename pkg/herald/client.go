// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

// AdminSocket returns the admin socket path for a configuration file ("" =
// built-in default): what `herald reload` and `herald status` connect to.
// A file that does not load still yields a path (the one systemd's
// herald-admin.socket uses, or the default), so that reloading a broken file
// reaches the daemon, which then says what is wrong with it.
func AdminSocket(configPath string) (string, error) {
	c := config.Default() // its admin socket follows $RUNTIME_DIRECTORY
	if configPath != "" {
		if loaded, err := config.Load(configPath); err == nil {
			c = loaded
		} else if os.Getenv("RUNTIME_DIRECTORY") == "" {
			return "/run/herald/admin.sock", nil
		}
	}
	return absPath(c.Admin.Socket), nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// AdminClient returns an HTTP client that talks to the admin socket.
func AdminClient(socket string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
			DisableKeepAlives: true,
		},
	}
}

// Reload asks the running herald to reload its configuration and waits
// until it is done: it is ExecReload= in the unit, so that `systemctl
// reload` returns only when the new configuration is in effect (or was
// rejected, which is reported as a failure while herald keeps running).
func Reload(ctx context.Context, socket string, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://herald/reload", nil)
	if err != nil {
		return err
	}
	resp, err := AdminClient(socket, 0).Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return exitErrf(ExitRunning, "herald is not running (no admin socket at %s)", socket)
		}
		return fmt.Errorf("reload: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		OK     bool   `json:"ok"`
		Error  string `json:"error"`
		Status string `json:"status"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(b, &body); err != nil {
		return fmt.Errorf("reload: HTTP %d: %s", resp.StatusCode, b)
	}
	if !body.OK {
		return fmt.Errorf("reload rejected: %s", body.Error)
	}
	fmt.Fprintf(out, "reloaded: %s\n", body.Status)
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
		return exitErr(ExitConfig, err)
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
		return exitErr(ExitConfig, errors.New(strings.Join(problems, "\n")))
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
