// SPDX-License-Identifier: Apache-2.0

package adminapi

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
	"syscall"
	"time"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/paths"
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
	return AdminSocketFor(c, path)
}

// AdminSocketFor is AdminSocket for an already loaded configuration (nil:
// the file did not load) read from path.
func AdminSocketFor(c *config.Config, path string) string {
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

// NotRunningError says that no herald listens on Socket: the socket does
// not exist or refuses connections. The herald command exits with
// EX_UNAVAILABLE (69) for it.
type NotRunningError struct{ Socket string }

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("herald is not running (no admin socket at %s)", e.Socket)
}

// notRunning returns a NotRunningError for a dial error that says nobody
// listens on socket, else nil.
func notRunning(err error, socket string) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return &NotRunningError{Socket: socket}
	}
	return nil
}

// Reload asks the running herald on socket to reload its configuration
// and waits until it is done. An answer that rejects the configuration
// (herald keeps running the old one) is an error.
func Reload(ctx context.Context, socket string) (ReloadAnswer, error) {
	var body ReloadAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://herald/reload", nil)
	if err != nil {
		return body, err
	}
	resp, err := AdminClient(socket, 0).Do(req)
	if err != nil {
		if nr := notRunning(err, socket); nr != nil {
			return body, nr
		}
		return body, fmt.Errorf("reload: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(b, &body); err != nil {
		return body, fmt.Errorf("reload: HTTP %d: %s", resp.StatusCode, b)
	}
	if !body.OK {
		return body, fmt.Errorf("reload rejected: %s", body.Error)
	}
	return body, nil
}

// FetchStatus reads GET /status of the herald on socket, within 5 s.
func FetchStatus(ctx context.Context, socket string) (*StatusReport, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://herald/status", nil)
	resp, err := AdminClient(socket, 5*time.Second).Do(req)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT):
			return nil, fmt.Errorf("no admin socket at %s (herald not running, or another admin.socket is configured)", socket)
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("admin socket %s refuses connections (herald not running)", socket)
		case errors.Is(err, syscall.EACCES):
			return nil, fmt.Errorf("admin socket %s: permission denied", socket)
		}
		return nil, fmt.Errorf("admin socket %s: %v", socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin socket %s: HTTP %d", socket, resp.StatusCode)
	}
	var rep StatusReport
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&rep); err != nil {
		return nil, fmt.Errorf("admin socket %s: %v", socket, err)
	}
	return &rep, nil
}
