// SPDX-License-Identifier: Apache-2.0

package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// Config is herald's whole configuration. The zero value is not useful: use
// Default, Load or Parse.
type Config struct {
	// File is the path the configuration was read from ("" for the built-in
	// default).
	File string `yaml:"-"`

	// StateDir holds the message store and the instance lock. Default:
	// $STATE_DIRECTORY (set by StateDirectory=) or ./.herald.
	StateDir string `yaml:"state_dir"`
	// Unit is the systemd unit herald runs as; a manual start is refused
	// while it is active. Default herald.service.
	Unit     string   `yaml:"unit"`
	Listen   Listen   `yaml:"listen"`
	Admin    Admin    `yaml:"admin"`
	Log      Log      `yaml:"log"`
	Shutdown Shutdown `yaml:"shutdown"`
	Watchdog Watchdog `yaml:"watchdog"`
	Store    Store    `yaml:"store"`
	Cluster  Cluster  `yaml:"cluster"`
	Agent    Agent    `yaml:"agent"`
	Dispatch Dispatch `yaml:"dispatch"`
	Delivery Delivery `yaml:"delivery"`
	API      API      `yaml:"api"`
	Limits   Limits   `yaml:"limits"`
	Media    Media    `yaml:"media"`
	// Platforms maps an instance name to its settings. The instance name is
	// also the adapter type unless type: is given.
	Platforms map[string]*Platform `yaml:"platforms"`
	// Fault holds fault-injection hooks for tests. Never set in production.
	Fault Fault `yaml:"fault"`
}

// Listen configures the public HTTP listener (webhook routes). Under systemd
// the listener comes from herald.socket (FileDescriptorName=http) and
// this address is only the fallback.
type Listen struct {
	// HTTP is host:port to bind when no socket was passed. Default
	// 127.0.0.1:8089.
	HTTP string `yaml:"http"`
	// ReadHeaderTimeout bounds a client sending request headers. Default 5s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// RequestTimeout bounds reading a request body and answering it. Default 15s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 60s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConnections caps the connections open at once (idle keep-alive
	// ones included); a connection beyond it is answered 503 and closed at
	// once. It bounds what a flood of clients can hold: a goroutine, buffers
	// and up to a webhook's max_body_bytes each. Default 256.
	MaxConnections int `yaml:"max_connections"`
	// Metrics is host:port of the optional Prometheus listener, which
	// serves only GET /metrics. Under systemd it comes from
	// herald-metrics.socket (FileDescriptorName=metrics) when that unit is
	// enabled. Default "": without the socket, no metrics listener (the
	// admin socket serves /metrics too).
	Metrics string `yaml:"metrics"`
}

// Admin configures the local admin endpoint (health, metrics, status,
// reload).
type Admin struct {
	// Socket is the unix socket path used when systemd passed no "admin"
	// socket. Default $RUNTIME_DIRECTORY/admin.sock, else
	// <state_dir>/admin.sock.
	Socket string `yaml:"socket"`
}

// Log configures logging.
type Log struct {
	// Level: trace, debug, info, warn, error. Default info.
	Level string `yaml:"level"`
	// Format: auto (journal when stderr is the journal, else text), text,
	// json, journal. Default auto.
	Format string `yaml:"format"`
}

// Shutdown bounds the stop sequence. The whole stop takes at most
// DrainTimeout + AdapterTimeout + about a second, whatever adapters do; keep
// that below the unit's TimeoutStopSec (herald extends the stop timeout with
// EXTEND_TIMEOUT_USEC while it drains, but never past this bound).
type Shutdown struct {
	// DrainTimeout is how long turns in flight may run after a stop request.
	// What has not finished then stays pending for the next instance.
	// Default 20s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// AdapterTimeout bounds each adapter's Stop; adapters stop
	// concurrently. Default 5s.
	AdapterTimeout time.Duration `yaml:"adapter_timeout"`
}

// Watchdog tunes the liveness check behind WATCHDOG=1 pings.
type Watchdog struct {
	// CheckTimeout is how long the main loop and the dispatcher may take to
	// answer a liveness probe; a probe that times out withholds the ping.
	// Default 1s; capped at a quarter of WATCHDOG_USEC at run time.
	CheckTimeout time.Duration `yaml:"check_timeout"`
}

// Store configures the embedded message store.
type Store struct {
	// Path of the SQLite database. Default <state_dir>/herald.db.
	Path string `yaml:"path"`
	// Sync: full (every acknowledged message survives power loss) or normal
	// (survives a process crash or SIGKILL, not power loss). Default full.
	Sync string `yaml:"sync"`
	// Retention is how long finished messages are kept for deduplication.
	// Default 72h (platforms redeliver within 24h).
	Retention time.Duration `yaml:"retention"`
	// HistoryRetention is how long the conversation history of sessions
	// with a backend that keeps none (kind openai) is kept. Besides, each
	// session keeps only its newest agent.history_messages entries, the
	// most a turn sends. Default 720h.
	HistoryRetention time.Duration `yaml:"history_retention"`
	// Backend: sqlite (the database at path, default) or nats (NATS
	// JetStream, for cluster mode; see nats).
	Backend string `yaml:"backend"`
	// NATS configures the nats backend.
	NATS StoreNATS `yaml:"nats"`
}

// Agent configures the agent backend.
type Agent struct {
	// Kind: echo (built in), openai (any OpenAI-compatible
	// /v1/chat/completions) or hermes (Hermes Agent API server; history kept
	// by the server via X-Hermes-Session-Id). Default echo.
	Kind string `yaml:"kind"`
	// URL is the base URL, without /v1. Required for openai and hermes.
	URL string `yaml:"url"`
	// Model sent in requests. Default hermes-agent.
	Model string `yaml:"model"`
	// Key is the bearer key (a credential or a file, never inline).
	Key secret.Ref `yaml:"key"`
	// ConnectTimeout bounds dialing and receiving response headers. Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// FirstTokenTimeout bounds the wait for the first streamed content or
	// tool-progress event (a tool at work is not a silent backend). Default
	// 120s.
	FirstTokenTimeout time.Duration `yaml:"first_token_timeout"`
	// IdleTimeout bounds the silence between two stream events (keepalive
	// comments count). Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// TotalTimeout bounds a whole turn. Default 30m.
	TotalTimeout time.Duration `yaml:"total_timeout"`
	// MaxAttempts for 429/5xx/connection errors before the turn fails.
	// Default 3.
	MaxAttempts int `yaml:"max_attempts"`
	// HistoryMessages is how many earlier messages of the session are sent
	// to backends that keep no history (kind openai). Default 20.
	HistoryMessages int `yaml:"history_messages"`
	// SystemPrompt is sent first to openai backends, if set.
	SystemPrompt string `yaml:"system_prompt"`
	// HermesAPI chooses how kind hermes runs a turn: auto (default) uses
	// the Runs API when GET /v1/capabilities offers run_submission,
	// run_status, run_events_sse and run_stop, else chat completions (with
	// a warning naming what is missing); runs or chat_completions force
	// one.
	HermesAPI string `yaml:"hermes_api"`
	// ApprovalTimeout is how long a run's request to approve a tool call
	// waits for /approve or /deny in the chat before herald denies it.
	// Default 5m.
	ApprovalTimeout time.Duration `yaml:"approval_timeout"`
	// RerunInterrupted (runs mode) runs a turn once more, under a new
	// idempotency key, when its run reads as interrupted because Hermes
	// itself restarted while it executed. Default false: the user is told
	// and asked to send the message again. The trade-off: the interrupted
	// run may already have run some of its tools (shell commands, file
	// writes, web calls), and the re-run runs them again. At most one
	// re-run per message; the attempt is recorded durably, so a herald
	// restart during the re-run re-attaches to it instead of starting a
	// third run.
	RerunInterrupted bool `yaml:"rerun_interrupted"`
	Echo             Echo `yaml:"echo"`
}

// Echo configures the built-in echo agent.
type Echo struct {
	// WordDelay is the pause between streamed words, to simulate a slow
	// agent in demos and drain tests. Default 0.
	WordDelay time.Duration `yaml:"word_delay"`
}

// Dispatch configures turn scheduling.
type Dispatch struct {
	// BusyPolicy: queue (default) runs messages of a busy session one after
	// another; interrupt cancels the running turn for the newest message.
	BusyPolicy string `yaml:"busy_policy"`
	// GroupSessionsPerUser gives each sender in a group chat their own
	// session. Default true.
	GroupSessionsPerUser *bool `yaml:"group_sessions_per_user"`
	// MaxConcurrentTurns caps turns running at once across sessions.
	// Default 64.
	MaxConcurrentTurns int `yaml:"max_concurrent_turns"`
	// StreamEdits shows a long reply growing by editing one message, on
	// platforms that support edits. Default false.
	StreamEdits bool `yaml:"stream_edits"`
	// StreamEditInterval is the minimum time between two edits. Default 1s.
	StreamEditInterval time.Duration `yaml:"stream_edit_interval"`
	// MaxReplyParts caps the messages one reply is split into (a 4 MiB
	// agent reply would be about 1,000 Telegram messages). A longer reply
	// is cut, and its last part says so. Default 20.
	MaxReplyParts int `yaml:"max_reply_parts"`
}

// Delivery configures reply delivery retries.
type Delivery struct {
	// Timeout bounds one Send call. Default 15s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts before a reply is given up. Default 8.
	MaxAttempts int `yaml:"max_attempts"`
	// InitialBackoff, doubled per attempt with jitter up to MaxBackoff.
	// Defaults 1s and 5m. A platform's Retry-After wins when larger, up to
	// an hour (a longer one is logged and clamped).
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
}

// Fault holds fault-injection hooks used by herald's own end-to-end tests.
// Only test builds (go build -tags heraldtest) act on them; the production
// binary refuses a configuration that sets one.
type Fault struct {
	// WedgeMainLoopAfter blocks the main loop forever this long after
	// READY=1, so the watchdog stops pinging and systemd restarts herald.
	WedgeMainLoopAfter time.Duration `yaml:"wedge_main_loop_after"`
}

// Platform is one configured platform instance.
type Platform struct {
	// Name is the key under platforms:.
	Name string `yaml:"-"`
	// Type is the adapter type; default Name.
	Type string `yaml:"type"`
	// Enabled defaults to true; false keeps the section but builds nothing.
	Enabled *bool `yaml:"enabled"`
	// AllowAll lets every user talk to the agent. Must be explicit.
	// Deprecated: dm_policy: open says the same.
	AllowAll bool `yaml:"allow_all"`
	// DMPolicy decides who may talk to the agent: allowlist (allowed_users
	// and approved pairings), pairing (besides, an unknown user's direct
	// message gets a code the operator can approve) or open (everyone).
	// Default: open with allow_all, else allowlist.
	DMPolicy string `yaml:"dm_policy"`
	// AllowedUsers lists platform user ids allowed to talk to the agent.
	AllowedUsers []string `yaml:"allowed_users"`
	// Unauthorized: reply (default: a short refusal in direct messages) or
	// ignore. Group messages from unknown users are always ignored.
	Unauthorized string `yaml:"unauthorized"`
	// UnauthorizedText is the refusal text.
	UnauthorizedText string `yaml:"unauthorized_text"`
	// GroupSessionsPerUser overrides dispatch.group_sessions_per_user.
	GroupSessionsPerUser *bool `yaml:"group_sessions_per_user"`
	// HomeChat is the chat a message of the send API goes to when it names
	// none.
	HomeChat string `yaml:"home_chat"`

	// Settings is the adapter type's own configuration (adapter.Type
	// NewConfig), decoded from the remaining keys of the section.
	Settings any `yaml:"-"`
}

// Policy returns DMPolicy with its default: open with allow_all, else
// allowlist.
func (p *Platform) Policy() string {
	switch {
	case p.DMPolicy != "":
		return p.DMPolicy
	case p.AllowAll:
		return "open"
	}
	return "allowlist"
}

// IsEnabled reports whether the platform is to be built.
func (p *Platform) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// Default returns the built-in configuration used by `herald run` without
// --config: the webhook platform on 127.0.0.1 and the echo agent, state
// under ./.herald. It needs no credentials and no network.
func Default() *Config {
	c := &Config{Platforms: map[string]*Platform{}}
	c.applyDefaults()
	if t, ok := adapter.Lookup("webhook"); ok {
		p := &Platform{Name: "webhook", Type: "webhook", AllowAll: true}
		p.Settings = t.NewConfig()
		if d, ok := p.Settings.(interface{ DemoDefaults() }); ok {
			d.DemoDefaults()
		}
		c.Platforms["webhook"] = p
	}
	return c
}

func (c *Config) applyDefaults() {
	if c.StateDir == "" {
		if d := firstPath(os.Getenv("STATE_DIRECTORY")); d != "" {
			c.StateDir = d
		} else {
			c.StateDir = ".herald"
		}
	}
	def(&c.Unit, "herald.service")
	def(&c.Listen.HTTP, "127.0.0.1:8089")
	defDur(&c.Listen.ReadHeaderTimeout, 5*time.Second)
	defDur(&c.Listen.RequestTimeout, 15*time.Second)
	defDur(&c.Listen.IdleTimeout, 60*time.Second)
	defInt(&c.Listen.MaxConnections, 256)
	c.apiDefaults()
	if c.Admin.Socket == "" {
		if d := firstPath(os.Getenv("RUNTIME_DIRECTORY")); d != "" {
			c.Admin.Socket = filepath.Join(d, "admin.sock")
		} else {
			c.Admin.Socket = filepath.Join(c.StateDir, "admin.sock")
		}
	}
	def(&c.Log.Level, "info")
	def(&c.Log.Format, "auto")
	defDur(&c.Shutdown.DrainTimeout, 20*time.Second)
	defDur(&c.Shutdown.AdapterTimeout, 5*time.Second)
	defDur(&c.Watchdog.CheckTimeout, time.Second)
	if c.Store.Path == "" {
		c.Store.Path = filepath.Join(c.StateDir, "herald.db")
	}
	def(&c.Store.Sync, "full")
	defDur(&c.Store.Retention, 72*time.Hour)
	defDur(&c.Store.HistoryRetention, 30*24*time.Hour)
	c.storeNATSDefaults()
	c.clusterDefaults()
	def(&c.Agent.Kind, "echo")
	def(&c.Agent.Model, "hermes-agent")
	defDur(&c.Agent.ConnectTimeout, 10*time.Second)
	defDur(&c.Agent.FirstTokenTimeout, 120*time.Second)
	defDur(&c.Agent.IdleTimeout, 120*time.Second)
	defDur(&c.Agent.TotalTimeout, 30*time.Minute)
	defInt(&c.Agent.MaxAttempts, 3)
	defInt(&c.Agent.HistoryMessages, 20)
	def(&c.Agent.HermesAPI, "auto")
	defDur(&c.Agent.ApprovalTimeout, 5*time.Minute)
	def(&c.Dispatch.BusyPolicy, "queue")
	if c.Dispatch.GroupSessionsPerUser == nil {
		t := true
		c.Dispatch.GroupSessionsPerUser = &t
	}
	defInt(&c.Dispatch.MaxConcurrentTurns, 64)
	defDur(&c.Dispatch.StreamEditInterval, time.Second)
	defInt(&c.Dispatch.MaxReplyParts, 20)
	defDur(&c.Delivery.Timeout, 15*time.Second)
	defInt(&c.Delivery.MaxAttempts, 8)
	defDur(&c.Delivery.InitialBackoff, time.Second)
	defDur(&c.Delivery.MaxBackoff, 5*time.Minute)
	c.mediaDefaults()
	for _, p := range c.Platforms {
		def(&p.Unauthorized, "reply")
		def(&p.UnauthorizedText, "Sorry, you are not allowed to use this bot. Ask its operator to add your user id.")
	}
}

// firstPath returns the first of the colon-separated paths systemd puts in
// $STATE_DIRECTORY and friends when several directories are configured.
func firstPath(s string) string {
	p, _, _ := strings.Cut(s, ":")
	return p
}

func def(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func defDur(d *time.Duration, v time.Duration) {
	if *d == 0 {
		*d = v
	}
}

func defInt(i *int, v int) {
	if *i == 0 {
		*i = v
	}
}

// Load reads and validates the file at path. On any problem it returns
// Errors; each entry names the file, line and key.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read: %v", errors.Unwrap(err))}}
	}
	return Parse(path, b)
}

// Parse decodes and validates data; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	d := newDecoder(name)
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, errEOF) || err.Error() == "EOF" {
			// An empty file is the default configuration.
			c := Default()
			c.File = name
			return c, nil
		}
		return nil, Errors{syntaxError(name, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: name, Line: extra.Line, Column: extra.Column, Msg: "more than one YAML document"}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d.pos[""] = root
	c := &Config{}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "", "expected a mapping at the top level, got %s", describe(root))
		return nil, d.errs
	}
	// Platforms need type-directed decoding; take them out of the generic
	// walk.
	var platforms *yaml.Node
	var platKey *yaml.Node
	rest := &yaml.Node{Kind: yaml.MappingNode, Line: root.Line, Column: root.Column}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "platforms" {
			platKey, platforms = root.Content[i], root.Content[i+1]
			continue
		}
		rest.Content = append(rest.Content, root.Content[i], root.Content[i+1])
	}
	d.decodeStruct(rest, reflect.ValueOf(c).Elem(), "")
	c.Platforms = map[string]*Platform{}
	if platforms != nil {
		d.keys["platforms"] = platKey
		d.decodePlatforms(platforms, c)
	}
	c.File = name
	c.applyDefaults()
	d.addValidation("", c.validate())
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		return nil, d.errs
	}
	return c, nil
}

var errEOF = errors.New("EOF")

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxError(name string, err error) Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		var line int
		fmt.Sscan(m[1], &line)
		return Error{File: name, Line: line, Column: 1, Msg: "YAML syntax error: " + m[2]}
	}
	return Error{File: name, Msg: "YAML syntax error: " + strings.TrimPrefix(msg, "yaml: ")}
}

var platformKeys = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range structFields(reflect.TypeOf(Platform{})) {
		m[f.name] = true
	}
	return m
}()

var instanceName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

func (d *decoder) decodePlatforms(n *yaml.Node, c *Config) {
	d.pos["platforms"] = n
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "platforms", "expected a mapping of platform names, got %s", describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name := k.Value
		path := "platforms." + name
		d.keys[path] = k
		d.pos[path] = val
		if !instanceName.MatchString(name) {
			d.errorf(k, path, "platform name must match %s", instanceName)
			continue
		}
		if _, dup := c.Platforms[name]; dup {
			d.errorf(k, path, "duplicate key")
			continue
		}
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			val = &yaml.Node{Kind: yaml.MappingNode, Line: val.Line, Column: val.Column}
		}
		if val.Kind != yaml.MappingNode {
			d.errorf(val, path, "expected a mapping, got %s", describe(val))
			continue
		}
		common := &yaml.Node{Kind: yaml.MappingNode, Line: val.Line, Column: val.Column}
		own := &yaml.Node{Kind: yaml.MappingNode, Line: val.Line, Column: val.Column}
		for j := 0; j+1 < len(val.Content); j += 2 {
			if platformKeys[val.Content[j].Value] {
				common.Content = append(common.Content, val.Content[j], val.Content[j+1])
			} else {
				own.Content = append(own.Content, val.Content[j], val.Content[j+1])
			}
		}
		p := &Platform{Name: name}
		d.decodeStruct(common, reflect.ValueOf(p).Elem(), path)
		d.pos[path] = val
		c.Platforms[name] = p
		if p.Type == "" {
			p.Type = name
		}
		t, ok := adapter.Lookup(p.Type)
		if !ok {
			where := k
			if tn, ok := d.pos[path+".type"]; ok {
				where = tn
			}
			d.errorf(where, path+".type", "unknown platform type %q (known: %s)", p.Type, strings.Join(adapter.Types(), ", "))
			continue
		}
		settings := t.NewConfig()
		d.decodeStruct(own, reflect.ValueOf(settings).Elem(), path)
		d.pos[path] = val
		p.Settings = settings
	}
}

// validate checks cross-field rules of the whole configuration. Keys are
// absolute.
func (c *Config) validate() error {
	var errs []error
	add := func(key, format string, args ...any) { errs = append(errs, Errorf(key, format, args...)) }
	if c.Listen.HTTP != "" {
		if _, _, err := net.SplitHostPort(c.Listen.HTTP); err != nil {
			add("listen.http", "%q is not host:port", c.Listen.HTTP)
		}
	}
	if c.Listen.MaxConnections < 1 {
		add("listen.max_connections", "%d is not a positive number", c.Listen.MaxConnections)
	}
	if c.Listen.Metrics != "" {
		if _, _, err := net.SplitHostPort(c.Listen.Metrics); err != nil {
			add("listen.metrics", "%q is not host:port", c.Listen.Metrics)
		}
	}
	if !oneOf(c.Log.Level, "trace", "debug", "info", "warn", "warning", "error") {
		add("log.level", "%q is not one of trace, debug, info, warn, error", c.Log.Level)
	}
	if !oneOf(c.Log.Format, "auto", "text", "json", "journal") {
		add("log.format", "%q is not one of auto, text, json, journal", c.Log.Format)
	}
	if !strings.HasSuffix(c.Unit, ".service") {
		add("unit", "%q must name a .service unit", c.Unit)
	}
	if c.Shutdown.AdapterTimeout > 5*time.Minute {
		add("shutdown.adapter_timeout", "%s is longer than the 5m limit", c.Shutdown.AdapterTimeout)
	}
	if c.Shutdown.DrainTimeout > time.Hour {
		add("shutdown.drain_timeout", "%s is longer than the 1h limit", c.Shutdown.DrainTimeout)
	}
	if !oneOf(c.Store.Sync, "full", "normal") {
		add("store.sync", "%q is not one of full, normal", c.Store.Sync)
	}
	switch c.Agent.Kind {
	case "echo":
	case "openai", "hermes":
		if c.Agent.URL == "" {
			add("agent.url", "required for kind %s", c.Agent.Kind)
		} else if !strings.HasPrefix(c.Agent.URL, "http://") && !strings.HasPrefix(c.Agent.URL, "https://") {
			add("agent.url", "%q must start with http:// or https://", c.Agent.URL)
		}
		if c.Agent.Kind == "hermes" && c.Agent.Key.IsZero() {
			add("agent.key", "required for kind hermes (the API server needs API_SERVER_KEY)")
		}
	default:
		add("agent.kind", "%q is not one of echo, openai, hermes", c.Agent.Kind)
	}
	if !c.Agent.Key.IsZero() {
		if err := c.Agent.Key.Validate(); err != nil {
			add("agent.key", "%v", err)
		}
	}
	if c.Agent.MaxAttempts < 1 {
		add("agent.max_attempts", "must be at least 1")
	}
	switch c.Agent.HermesAPI {
	case "", "auto", "runs", "chat_completions":
	default:
		add("agent.hermes_api", "%q is not one of auto, runs, chat_completions", c.Agent.HermesAPI)
	}
	if c.Agent.ApprovalTimeout > 24*time.Hour {
		add("agent.approval_timeout", "%s is longer than the 24h limit", c.Agent.ApprovalTimeout)
	}
	if c.Agent.HistoryMessages < 0 {
		add("agent.history_messages", "must not be negative")
	}
	if !oneOf(c.Dispatch.BusyPolicy, "queue", "interrupt") {
		add("dispatch.busy_policy", "%q is not one of queue, interrupt", c.Dispatch.BusyPolicy)
	}
	if c.Dispatch.MaxConcurrentTurns < 1 {
		add("dispatch.max_concurrent_turns", "must be at least 1")
	}
	if c.Dispatch.MaxReplyParts < 1 {
		add("dispatch.max_reply_parts", "must be at least 1")
	}
	if c.Delivery.MaxAttempts < 1 {
		add("delivery.max_attempts", "must be at least 1")
	}
	if c.Delivery.InitialBackoff > c.Delivery.MaxBackoff {
		add("delivery.initial_backoff", "%s is larger than max_backoff %s", c.Delivery.InitialBackoff, c.Delivery.MaxBackoff)
	}
	c.validateAPI(add)
	c.validateLimits(add)
	c.validateMedia(add)
	c.validateStoreNATS(add)
	c.validateCluster(add)
	names := make([]string, 0, len(c.Platforms))
	for n := range c.Platforms {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := c.Platforms[n]
		key := "platforms." + n
		if !oneOf(p.Unauthorized, "reply", "ignore") {
			add(key+".unauthorized", "%q is not one of reply, ignore", p.Unauthorized)
		}
		if !oneOf(p.DMPolicy, "", "allowlist", "pairing", "open") {
			add(key+".dm_policy", "%q is not one of allowlist, pairing, open", p.DMPolicy)
		} else if p.AllowAll && p.DMPolicy != "" && p.DMPolicy != "open" {
			add(key+".allow_all", "allow_all: true contradicts dm_policy: %s (allow_all is dm_policy: open)", p.DMPolicy)
		}
		if p.AllowAll && len(p.AllowedUsers) > 0 {
			add(key+".allow_all", "allow_all: true and allowed_users exclude each other")
		}
		for i, u := range p.AllowedUsers {
			if strings.TrimSpace(u) == "" {
				add(fmt.Sprintf("%s.allowed_users[%d]", key, i), "empty user id")
			}
		}
	}
	return errors.Join(errs...)
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}
