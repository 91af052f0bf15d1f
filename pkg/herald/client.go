// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/paths"
	"github.com/heraldgw/herald/pkg/secret"
)

// ConfigFile returns the configuration file a command means: configPath if
// given, else paths.ConfigFile if it exists, else "" (the built-in
// default).
func ConfigFile(configPath string) string {
	if configPath != "" {
		return configPath
	}
	if _, err := os.Stat(paths.ConfigFile); err == nil {
		return paths.ConfigFile
	}
	return ""
}

// AdminSocket returns the admin socket of the running herald that the
// configuration file configPath describes (see ConfigFile for ""). Every
// command that talks to a running herald (reload, status, doctor) finds it
// with this function.
//
// A running herald listens on the socket systemd passed it (the packaged
// herald-admin.socket) or else on admin.socket from its configuration,
// whose default depends on the service's environment
// ($RUNTIME_DIRECTORY/admin.sock, else <state_dir>/admin.sock): a command
// run by hand lacks that environment. So AdminSocket tries, in order,
// admin.socket as the configuration gives it here, paths.AdminSocket,
// and the user service manager's $XDG_RUNTIME_DIR/herald/admin.sock, and
// returns the first that exists as a socket. When none does, it returns
// the one the error message should name: paths.AdminSocket for the
// packaged configuration file, else the configured one. A file that does
// not load still yields a path, so that reloading a broken file reaches
// the daemon, which then says what is wrong with it.
func AdminSocket(configPath string) string {
	path := ConfigFile(configPath)
	c := config.Default()
	if path != "" {
		if loaded, err := config.Load(path); err == nil {
			c = loaded
		}
	}
	return adminSocketFor(c, path)
}

// adminSocketFor is AdminSocket for an already loaded configuration (nil:
// the file did not load) read from path.
func adminSocketFor(c *config.Config, path string) string {
	if c == nil {
		c = config.Default()
	}
	configured := absPath(c.Admin.Socket)
	candidates := []string{configured, paths.AdminSocket}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		candidates = append(candidates, filepath.Join(d, "herald", "admin.sock"))
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Type() == fs.ModeSocket {
			return p
		}
	}
	if path == paths.ConfigFile {
		return paths.AdminSocket
	}
	return configured
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
// A secret file changed since herald started is not applied by a reload:
// Reload then warns that a restart is needed.
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
	if !toJournal(out) {
		// In the journal (ExecReload=) herald's own "reload accepted"
		// says it already.
		fmt.Fprintf(out, "reloaded: %s\n", body.Status)
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
