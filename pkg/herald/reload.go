// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/logging"
)

// reloadRequest asks the main loop to reload; the result comes back on
// done.
type reloadRequest struct{ done chan error }

// reload re-reads the configuration and applies it, bracketed by
// RELOADING=1 … READY=1 (READY=1 also when the new configuration is
// rejected: systemd must never be left in "reloading"). It runs on the main
// loop.
func (d *daemon) reload() error {
	d.notifier.Reloading()
	changed, err := d.applyReload()
	if err != nil {
		d.metrics.Reload("rejected")
		d.metrics.LastReload(false)
		d.mu.Lock()
		d.lastReloadErr = err.Error()
		d.mu.Unlock()
		logging.Event(d.log, logging.MsgReloadRejected).WithError(err).Error("reload rejected; the previous configuration stays in effect")
		d.notifier.ReloadFailed(d.statusLine(), int(syscall.EINVAL))
		return err
	}
	d.metrics.Reload("accepted")
	d.metrics.LastReload(true)
	d.mu.Lock()
	d.lastReloadErr = ""
	d.mu.Unlock()
	what := strings.Join(changed, ", ")
	if what == "" {
		what = "nothing"
	}
	logging.Event(d.log, logging.MsgReloadAccepted).WithField("changed", what).Info("reload accepted; changed: " + what)
	d.notifier.Ready(d.statusLine())
	return nil
}

// applyReload loads the file again and, if it is valid and changes nothing
// that needs a restart, applies it: log level, agent, platform policies, and
// the platforms themselves (only those whose settings changed are
// restarted). On any error nothing has changed.
func (d *daemon) applyReload() (changed []string, err error) {
	old := d.cfg
	if old.File == "" {
		return nil, nil // built-in default: nothing to re-read
	}
	cfg, err := config.Load(old.File)
	if err != nil {
		return nil, err
	}
	if keys := restartOnly(old, cfg); len(keys) > 0 {
		return nil, fmt.Errorf("%s: %s cannot change while herald runs; restart it to apply (systemctl restart %s)", cfg.File, strings.Join(keys, ", "), cfg.Unit)
	}
	level, err := logrus.ParseLevel(cfg.Log.Level)
	if err != nil {
		return nil, err
	}
	var ag agent.Agent
	if !reflect.DeepEqual(old.Agent, cfg.Agent) {
		if ag, err = agent.New(cfg.Agent, d.logger.WithField("component", "agent")); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.File, err)
		}
		changed = append(changed, "agent")
	}
	current := map[string]*platform{}
	for _, p := range d.running() {
		current[p.name] = p
	}
	next, err := d.buildPlatforms(cfg, current)
	if err != nil {
		return nil, err
	}
	if d.clusterNode != nil {
		if keys := leasedChanged(current, next); len(keys) > 0 {
			return nil, fmt.Errorf("%s: %s cannot change while herald runs in cluster mode (leased platforms: their leases are announced at start); restart it to apply (systemctl restart %s)", cfg.File, strings.Join(keys, ", "), cfg.Unit)
		}
	}
	// From here on nothing fails: apply.
	var stop []*platform
	for name, p := range current {
		if np, ok := next[name]; !ok || np.adapter != p.adapter {
			stop = append(stop, p)
			changed = append(changed, "platforms."+name)
		}
	}
	for name, np := range next {
		if p, ok := current[name]; !ok {
			changed = append(changed, "platforms."+name)
		} else if np.adapter == p.adapter && !reflect.DeepEqual(p.conf, np.conf) {
			changed = append(changed, "platforms."+name+" (policy)")
		}
	}
	d.stopPlatforms(stop, cfg.Shutdown.AdapterTimeout)
	d.board.forget(next)
	if old.Log.Level != cfg.Log.Level {
		d.logger.SetLevel(level)
		changed = append(changed, "log.level")
	}
	if ag != nil {
		d.disp.SetAgent(ag)
	}
	d.disp.SetPlatforms(dispatchPlatforms(next, cfg))
	d.httpMux.set(httpRoutes(next, d.mediaHandler()))
	d.startPlatforms(next)
	if !reflect.DeepEqual(old.Shutdown, cfg.Shutdown) || !reflect.DeepEqual(old.Watchdog, cfg.Watchdog) || !reflect.DeepEqual(old.Fault, cfg.Fault) {
		changed = append(changed, "shutdown/watchdog")
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	return changed, nil
}

// leasedChanged lists the leased platforms (adapter.Leased) that a reload
// from current to next would add, remove or rebuild. Their policy may
// change.
func leasedChanged(current, next map[string]*platform) []string {
	var keys []string
	for name, p := range current {
		if np, ok := next[name]; adapter.Leased(p.conf.Type) && (!ok || np.adapter != p.adapter) {
			keys = append(keys, "platforms."+name)
		}
	}
	for name, np := range next {
		if _, ok := current[name]; !ok && adapter.Leased(np.conf.Type) {
			keys = append(keys, "platforms."+name)
		}
	}
	sort.Strings(keys)
	return keys
}

// restartOnly lists the keys whose change a reload cannot apply.
func restartOnly(a, b *config.Config) []string {
	var keys []string
	check := func(key string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			keys = append(keys, key)
		}
	}
	check("state_dir", a.StateDir, b.StateDir)
	check("unit", a.Unit, b.Unit)
	check("listen", a.Listen, b.Listen)
	check("admin", a.Admin, b.Admin)
	check("store", a.Store, b.Store)
	check("cluster", a.Cluster, b.Cluster)
	check("log.format", a.Log.Format, b.Log.Format)
	check("dispatch", a.Dispatch, b.Dispatch)
	check("delivery", a.Delivery, b.Delivery)
	check("api", a.API, b.API)
	check("limits", a.Limits, b.Limits)
	check("media", a.Media, b.Media)
	return keys
}
