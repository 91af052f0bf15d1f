// SPDX-License-Identifier: Apache-2.0

package hermes

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/heraldgw/herald/pkg/paths"
	"github.com/heraldgw/herald/pkg/store"
)

// Options of Run.
type Options struct {
	// HermesHome is the Hermes home directory (default DefaultHome()).
	HermesHome string
	// Profile is a Hermes profile name ("" for the default profile).
	Profile string
	// Out receives herald.yaml and credentials/ (default DefaultOut()).
	Out string
	// DryRun writes nothing: it shows the table, the YAML and the files.
	DryRun bool
	// Force replaces files that differ from what the migration writes.
	Force bool
	// Stdout receives the report. Nothing printed ever holds a secret.
	Stdout io.Writer
}

// ErrChanged is returned when files on disk differ from the migration's
// and Force is not set. Nothing was written.
var ErrChanged = errors.New("files differ from what this migration writes (shown above); nothing written: run again with --force to replace them")

// DefaultOut is where the configuration goes: /etc/herald for root (where
// the herald unit reads it), else $XDG_CONFIG_HOME/herald or
// ~/.config/herald.
func DefaultOut() string {
	if os.Geteuid() == 0 {
		return paths.ConfigDir
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "herald")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "herald")
}

// Run reads the Hermes home, prints the mapping table and writes the
// herald configuration (or, with DryRun, shows it).
func Run(o Options) error {
	if o.HermesHome == "" {
		o.HermesHome = DefaultHome()
	}
	if o.Out == "" {
		o.Out = DefaultOut()
	}
	out := o.Stdout
	src, err := Load(o.HermesHome, o.Profile)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(o.Out, "herald.yaml")
	credDir := filepath.Join(o.Out, "credentials")
	plan := Build(src, credDir)

	fmt.Fprintf(out, "Hermes home: %s\n", src.Home)
	fmt.Fprintf(out, "herald configuration: %s (credentials in %s)\n\n", cfgPath, credDir)
	fmt.Fprint(out, plan.Table())
	fmt.Fprintln(out)

	old, err := os.ReadFile(cfgPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hermes: read %s: %w", cfgPath, err)
	}
	exists := err == nil
	yamlChanged := exists && !bytes.Equal(old, plan.YAML)
	var secretConflicts []string
	for _, s := range plan.Secrets {
		if s.Generate {
			continue
		}
		cur, err := os.ReadFile(filepath.Join(credDir, s.Name))
		if err == nil && strings.TrimSpace(string(cur)) != s.Value {
			secretConflicts = append(secretConflicts, s.Name)
		}
	}

	if o.DryRun {
		fmt.Fprintf(out, "--- %s (dry run: nothing written)\n%s\n", cfgPath, plan.YAML)
		if yamlChanged {
			fmt.Fprintf(out, "%s exists and differs:\n%s\n", cfgPath, Diff(string(old), string(plan.YAML)))
		}
		fmt.Fprintln(out, "Credential files (values not shown):")
		for _, s := range plan.Secrets {
			fmt.Fprintf(out, "  %s/%s  from %s%s\n", credDir, s.Name, s.From, conflictNote(s.Name, secretConflicts))
		}
		if len(plan.Approvals) > 0 {
			fmt.Fprintf(out, "Pairing approvals for herald's store: %s (%s)\n", filepath.Join(o.Out, store.PairingImportFile), approvalCounts(plan.Approvals))
		}
		printAdvice(out, plan)
		return nil
	}

	if (yamlChanged || len(secretConflicts) > 0) && !o.Force {
		if yamlChanged {
			fmt.Fprintf(out, "%s exists and differs from what this migration writes:\n%s\n", cfgPath, Diff(string(old), string(plan.YAML)))
		}
		for _, n := range secretConflicts {
			fmt.Fprintf(out, "%s/%s exists with a different value (not shown)\n", credDir, n)
		}
		return ErrChanged
	}

	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return fmt.Errorf("hermes: create %s: %w", o.Out, err)
	}
	if err := os.MkdirAll(credDir, 0o700); err != nil {
		return fmt.Errorf("hermes: create %s: %w", credDir, err)
	}
	for _, s := range plan.Secrets {
		p := filepath.Join(credDir, s.Name)
		if s.Generate {
			if _, err := os.Stat(p); err == nil {
				fmt.Fprintf(out, "kept %s\n", p)
				continue
			}
			k := make([]byte, 32)
			if _, err := rand.Read(k); err != nil {
				return fmt.Errorf("hermes: generate %s: %w", s.Name, err)
			}
			s.Value = hex.EncodeToString(k)
		}
		if err := writeFile(p, []byte(s.Value+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (0600, from %s)\n", p, s.From)
	}
	if yamlChanged {
		if err := writeFile(cfgPath+".bak", old, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "kept the previous %s as %s.bak\n", cfgPath, cfgPath)
	}
	if !exists || yamlChanged {
		if err := writeFile(cfgPath, plan.YAML, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", cfgPath)
	} else {
		fmt.Fprintf(out, "%s already matches\n", cfgPath)
	}
	if err := writeApprovals(out, o.Out, plan.Approvals); err != nil {
		return err
	}
	printAdvice(out, plan)
	fmt.Fprintf(out, "\nNext:\n  herald check-config --credentials-dir %s %s\n", credDir, cfgPath)
	if o.Out == paths.ConfigDir {
		fmt.Fprintln(out, "  systemctl restart herald   (a restart: systemd hands credentials over at start)")
	} else {
		fmt.Fprintf(out, "  CREDENTIALS_DIRECTORY=%s herald run --config %s\n", credDir, cfgPath)
	}
	return nil
}

// writeApprovals writes the pairing approvals to the import file next to
// the configuration; herald imports it into its pairing store at start,
// once. It is 0644 like herald.yaml: herald runs as its own user, and the
// user ids are no secret.
func writeApprovals(out io.Writer, dir string, approved map[string][]string) error {
	if len(approved) == 0 {
		return nil
	}
	data, err := json.MarshalIndent(store.PairingImport{Approved: approved}, "", "  ")
	if err != nil {
		return fmt.Errorf("hermes: encode pairing approvals: %w", err)
	}
	data = append(data, '\n')
	path := filepath.Join(dir, store.PairingImportFile)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		fmt.Fprintf(out, "%s already matches\n", path)
		return nil
	}
	if err := writeFile(path, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s (%s; herald imports them into its pairing store at start)\n", path, approvalCounts(approved))
	return nil
}

func approvalCounts(approved map[string][]string) string {
	names := make([]string, 0, len(approved))
	for p := range approved {
		names = append(names, p)
	}
	sort.Strings(names)
	for i, p := range names {
		names[i] = fmt.Sprintf("%s: %d approved", p, len(approved[p]))
	}
	return strings.Join(names, ", ")
}

func conflictNote(name string, conflicts []string) string {
	if contains(conflicts, name) {
		return "  (exists with a different value: needs --force)"
	}
	return ""
}

func printAdvice(out io.Writer, plan *Plan) {
	if len(plan.Notices) > 0 {
		fmt.Fprintln(out, "\nTo know or do:")
		for _, n := range plan.Notices {
			fmt.Fprintf(out, "  %s\n", n)
		}
	}
	if len(plan.TurnOff) > 0 {
		fmt.Fprintln(out, "\nExactly one consumer per bot: turn each migrated platform off in Hermes, or both gateways poll the same bot (Telegram answers 409 Conflict) or split the events (Feishu, Slack):")
		for _, t := range plan.TurnOff {
			fmt.Fprintf(out, "  %s\n", t)
		}
		fmt.Fprintf(out, "  then: %s\n", plan.hermesCmd("gateway restart"))
		if plan.RemoteAgent {
			fmt.Fprintf(out, "  herald talks to the remote API server: once no other platform runs in this Hermes gateway, it may stop entirely (%s).\n", plan.hermesCmd("gateway stop"))
		} else {
			fmt.Fprintf(out, "  Keep the Hermes gateway itself running: its API server is the agent herald talks to (%s would stop it too).\n", plan.hermesCmd("gateway stop"))
		}
	}
}

// hermesCmd is a hermes command line for the migrated profile.
func (p *Plan) hermesCmd(args string) string {
	if p.Source.Profile != "" {
		return "hermes -p " + p.Source.Profile + " " + args
	}
	return "hermes " + args
}

// writeFile writes data to path through a temporary file in the same
// directory, so a reader sees the old or the new content, never a part.
func writeFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("hermes: write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("hermes: write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("hermes: write %s: %w", path, err)
	}
	return nil
}
