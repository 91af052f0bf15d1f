// SPDX-License-Identifier: Apache-2.0

package hermes

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Row is one line of the mapping table: a Hermes setting and what it
// became. It never holds a secret.
type Row struct {
	// Setting is the Hermes setting: an .env name or a config.yaml path.
	Setting string
	// Status is Mapped, Unsupported, NotNeeded, StaysHermes or NotMigrated.
	Status string
	// Herald is the herald setting it became ("" when none).
	Herald string
	// Note says why, or what to know.
	Note string
}

// Secret is one file to write into the credentials directory.
type Secret struct {
	// Name is the credential name: the file name, and what the YAML refers
	// to as {credential: Name}.
	Name string
	// From is the Hermes setting it came from.
	From string
	// Value is the secret; empty when Generate is set.
	Value string
	// Generate asks for a new random key (for an API server that has none
	// yet); an existing file of that name is kept.
	Generate bool
}

// Plan is the result of Build: everything Write needs, and what to tell.
type Plan struct {
	Source *Source
	// Rows is the mapping table.
	Rows []Row
	// YAML is the herald configuration. It holds no secret.
	YAML []byte
	// Secrets to write, sorted by name.
	Secrets []Secret
	// Platforms are the herald platform sections written.
	Platforms []string
	// TurnOff says how to turn each migrated platform off in Hermes.
	TurnOff []string
	// Approvals are the users approved by pairing in Hermes, by migrated
	// platform, for herald's pairing store (the import file).
	Approvals map[string][]string
	// Notices are things the user must do or know.
	Notices []string
	// RemoteAgent is set when herald talks to a remote API server (Hermes'
	// proxy mode), not to the one inside this Hermes gateway.
	RemoteAgent bool
}

// Build maps a Hermes home to a herald configuration. It reads nothing:
// the same Source always gives the same Plan.
// credDir is the credentials directory the plan will be written to; it
// only appears in the instructions printed.
func Build(src *Source, credDir string) *Plan {
	b := &builder{src: src, credDir: credDir, idx: map[string]*Row{}, plan: &Plan{Source: src}, secrets: map[string]Secret{}}
	b.registerConfig()
	b.registerEnv()
	for _, w := range src.Warnings {
		b.plan.Notices = append(b.plan.Notices, "warning: "+w)
	}
	if src.LegacyJSON {
		b.found("gateway.json", Unsupported, "", "the legacy gateway.json is not read: move its settings into config.yaml and run again")
	}
	b.mapAgent()
	b.mapDispatch()
	for _, p := range []string{"telegram", "discord", "slack", "feishu"} {
		b.mapPlatform(p)
	}
	b.mapApprovals()
	for _, r := range b.rows {
		b.plan.Rows = append(b.plan.Rows, *r)
	}
	names := make([]string, 0, len(b.secrets))
	for n := range b.secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b.plan.Secrets = append(b.plan.Secrets, b.secrets[n])
	}
	b.plan.YAML = b.render()
	return b.plan
}

type builder struct {
	src     *Source
	credDir string
	rows    []*Row
	idx     map[string]*Row
	plan    *Plan
	secrets map[string]Secret

	agent     []*yaml.Node
	dispatch  []*yaml.Node
	platforms []*yaml.Node
	// unauthorized is the gateway-wide unauthorized_dm_behavior and where
	// it was set.
	unauthorized, unauthorizedFrom string
}

// found records a setting seen in the Hermes home, unless already recorded.
func (b *builder) found(setting, status, herald, note string) {
	if _, ok := b.idx[setting]; ok {
		return
	}
	r := &Row{Setting: setting, Status: status, Herald: herald, Note: note}
	b.idx[setting] = r
	b.rows = append(b.rows, r)
}

// set records what a setting became, replacing its default row.
func (b *builder) set(setting, status, herald, note string) {
	if r, ok := b.idx[setting]; ok {
		r.Status, r.Herald, r.Note = status, herald, note
		return
	}
	b.found(setting, status, herald, note)
}

// overridden marks a config.yaml setting that an .env setting overrides in
// Hermes.
func (b *builder) overridden(path, by string) {
	if _, ok := b.idx[path]; ok {
		b.set(path, NotNeeded, "", by+" overrides it in Hermes")
	}
}

// overriddenP marks every config.yaml place of platform p's key as
// overridden by an .env setting.
func (b *builder) overriddenP(p, key, by string) {
	for _, blk := range blocks(p) {
		b.overridden(blk+"."+key, by)
	}
}

// setting returns platform p's setting from the .env name env (which wins
// in Hermes) or else the config.yaml key, and where it came from ("" when
// unset).
func (b *builder) setting(p, env, key string) (val, from string) {
	if v, ok := b.src.Getenv(env); ok {
		b.overriddenP(p, key, env)
		return v, env
	}
	if v, path, ok := b.pget(p, key); ok && scalar(v) != "" {
		return scalar(v), path
	}
	return "", ""
}

func (b *builder) secret(name, from, value string) {
	b.secrets[name] = Secret{Name: name, From: from, Value: value}
}

// --- reading config.yaml ---

// asMap returns v as a string-keyed map, or nil.
func asMap(v any) map[string]any {
	switch m := v.(type) {
	case map[string]any:
		return m
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[fmt.Sprint(k)] = x
		}
		return out
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dig returns the config.yaml value at a dotted path.
func (b *builder) dig(path string) (any, bool) {
	var cur any = b.src.Config
	for _, part := range strings.Split(path, ".") {
		m := asMap(cur)
		if m == nil {
			return nil, false
		}
		v, ok := m[part]
		if !ok {
			return nil, false
		}
		cur = v
	}
	return cur, true
}

// global returns a gateway-wide key: top level first, then under gateway:.
func (b *builder) global(key string) (any, string, bool) {
	for _, path := range []string{key, "gateway." + key} {
		if v, ok := b.dig(path); ok {
			return v, path, true
		}
	}
	return nil, "", false
}

// blocks lists where Hermes reads platform p's settings, highest
// precedence first: the top-level block, platforms.<p> (and its extra:),
// gateway.platforms.<p> (and its extra:), gateway.<p>.
func blocks(p string) []string {
	return []string{p, "platforms." + p, "platforms." + p + ".extra", "gateway.platforms." + p, "gateway.platforms." + p + ".extra", "gateway." + p}
}

// pget returns platform p's setting key from config.yaml.
func (b *builder) pget(p, key string) (any, string, bool) {
	for _, blk := range blocks(p) {
		v, ok := b.dig(blk)
		if !ok {
			continue
		}
		if x, ok := asMap(v)[key]; ok {
			return x, blk + "." + key, true
		}
	}
	return nil, "", false
}

// boolish reads a bool the way Hermes coerces config values.
func boolish(v any) (val, ok bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case int:
		return x != 0, true
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "1", "yes", "on":
			return true, true
		case "false", "0", "no", "off":
			return false, true
		}
	}
	return false, false
}

// list reads a comma-separated string or a YAML list of ids.
func list(v any) []string {
	var raw []string
	switch x := v.(type) {
	case string:
		raw = strings.Split(x, ",")
	case []any:
		for _, e := range x {
			raw = append(raw, fmt.Sprint(e))
		}
	case nil:
	default:
		raw = []string{fmt.Sprint(x)}
	}
	var out []string
	for _, s := range raw {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func scalar(v any) string {
	if v == nil {
		return ""
	}
	return strings.TrimSpace(fmt.Sprint(v))
}

func (b *builder) registerConfig() {
	c := b.src.Config
	var other []string
	for _, k := range sortedKeys(c) {
		v := c[k]
		switch {
		case k == "platforms":
			m := asMap(v)
			for _, name := range sortedKeys(m) {
				b.registerBlock("platforms."+name, name, m[name])
			}
		case k == "gateway":
			m := asMap(v)
			for _, gk := range sortedKeys(m) {
				switch {
				case gk == "platforms":
					pm := asMap(m[gk])
					for _, name := range sortedKeys(pm) {
						b.registerBlock("gateway.platforms."+name, name, pm[name])
					}
				case gk == "streaming":
					b.registerStreaming("gateway.streaming", m[gk])
				case hermesPlatforms[gk] && asMap(m[gk]) != nil:
					b.registerBlock("gateway."+gk, gk, m[gk])
				default:
					st, note, ok := globalDefault(gk)
					if !ok {
						st, note = Unsupported, whyNoEquiv
					}
					b.found("gateway."+gk, st, "", note)
				}
			}
		case k == "display":
			m := asMap(v)
			rest := false
			for _, dk := range sortedKeys(m) {
				switch dk {
				case "busy_input_mode":
					b.found("display.busy_input_mode", Unsupported, "", whyNoEquiv)
				case "busy_ack_enabled":
					b.found("display.busy_ack_enabled", Unsupported, "", "herald sends no busy acknowledgement")
				default:
					rest = true
				}
			}
			if rest {
				other = append(other, "display")
			}
		case k == "streaming":
			b.registerStreaming("streaming", v)
		case hermesPlatforms[k] && asMap(v) != nil:
			b.registerBlock(k, k, v)
		default:
			if st, note, ok := globalDefault(k); ok {
				b.found(k, st, "", note)
			} else {
				other = append(other, k)
			}
		}
	}
	if len(other) > 0 {
		b.found("config.yaml: "+strings.Join(other, ", "), StaysHermes, "", "agent settings, not gateway ones: Hermes' API server keeps using them")
	}
}

func (b *builder) registerStreaming(path string, v any) {
	m := asMap(v)
	if m == nil {
		b.found(path, Unsupported, "", "not a mapping; ignored")
		return
	}
	for _, k := range sortedKeys(m) {
		switch k {
		case "cursor", "buffer_threshold", "fresh_final_after_seconds":
			b.found(path+"."+k, Unsupported, "", "herald's streamed edits have no such setting")
		default:
			b.found(path+"."+k, Unsupported, "", whyNoEquiv)
		}
	}
}

// registerBlock records every key of a platform block.
func (b *builder) registerBlock(path, platform string, v any) {
	m := asMap(v)
	if _, ok := heraldPlatforms[platform]; !ok && platform != "api_server" {
		b.found(path, StaysHermes, "", staysNote(platform))
		return
	}
	for _, k := range sortedKeys(m) {
		if k == "extra" {
			em := asMap(m[k])
			for _, ek := range sortedKeys(em) {
				st, note, _ := platformKeyDefault(ek)
				b.found(path+".extra."+ek, st, "", note)
			}
			continue
		}
		st, note, _ := platformKeyDefault(k)
		if platform == "api_server" && k == "cors_origins" {
			st, note = NotNeeded, "browser access only; herald calls the API server directly"
		}
		b.found(path+"."+k, st, "", note)
	}
}

func (b *builder) registerEnv() {
	var other []string
	for _, v := range b.src.Env {
		st, note, gw := envDefault(v.Name)
		if !gw {
			other = append(other, v.Name)
			continue
		}
		b.found(v.Name, st, "", note)
	}
	if len(other) > 0 {
		b.found(".env: "+strings.Join(other, ", "), StaysHermes, "", "agent settings (model providers, tools), not gateway ones: Hermes' API server keeps using them")
	}
}

// --- nodes of the herald YAML ---

func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func plain(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

func key(k, comment string) *yaml.Node {
	n := plain(k)
	n.HeadComment = comment
	return n
}

func boolNode(v bool) *yaml.Node { return plain(strconv.FormatBool(v)) }

func seq(items []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range items {
		n.Content = append(n.Content, str(s))
	}
	return n
}

func credential(name string) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle, Content: []*yaml.Node{plain("credential"), str(name)}}
}

func duration(d time.Duration) *yaml.Node { return plain(d.String()) }

// --- agent ---

// minAPIKey is the shortest API_SERVER_KEY Hermes accepts: shorter keys
// leave its API server off.
const minAPIKey = 16

func (b *builder) mapAgent() {
	add := func(k string, v *yaml.Node, comment string) { b.agent = append(b.agent, key(k, comment), v) }
	add("kind", plain("hermes"), "")

	// Proxy mode: the Hermes gateway forwards turns to a remote API server;
	// herald does the same.
	proxyURL, proxyFrom := "", ""
	if v, ok := b.src.Getenv("GATEWAY_PROXY_URL"); ok {
		proxyURL, proxyFrom = v, "GATEWAY_PROXY_URL"
	} else if v, path, ok := b.global("proxy_url"); ok && scalar(v) != "" {
		proxyURL, proxyFrom = scalar(v), path
	}
	if proxyURL != "" {
		u := strings.TrimSuffix(strings.TrimSuffix(proxyURL, "/"), "/v1")
		add("url", str(u), "")
		b.set(proxyFrom, Mapped, "agent.url", "Hermes forwards turns to this API server; so does herald")
		if k, ok := b.src.Getenv("GATEWAY_PROXY_KEY"); ok {
			add("key", credential("agent-key"), "")
			b.secret("agent-key", "GATEWAY_PROXY_KEY", k)
			b.set("GATEWAY_PROXY_KEY", Mapped, "agent.key (credential agent-key)", "")
		} else {
			add("key", credential("agent-key"), "")
			b.secrets["agent-key"] = Secret{Name: "agent-key", From: "generated", Generate: true}
			b.plan.Notices = append(b.plan.Notices, "GATEWAY_PROXY_KEY is not set: herald generated a key into "+b.credDir+"/agent-key; set API_SERVER_KEY on the remote Hermes to it")
		}
		for _, name := range []string{"API_SERVER_KEY", "API_SERVER_ENABLED", "API_SERVER_PORT", "API_SERVER_HOST", "API_SERVER_MODEL_NAME"} {
			if _, ok := b.src.Getenv(name); ok {
				b.set(name, NotNeeded, "", "herald uses the remote API server of "+proxyFrom)
			}
		}
		b.plan.RemoteAgent = true
		return
	}

	keyVal, keyFrom := b.setting("api_server", "API_SERVER_KEY", "key")
	host, port := "127.0.0.1", "8642"
	if v, from := b.setting("api_server", "API_SERVER_HOST", "host"); from != "" {
		host = v
		b.set(from, Mapped, "agent.url", "")
	}
	if v, from := b.setting("api_server", "API_SERVER_PORT", "port"); from != "" {
		port = v
		b.set(from, Mapped, "agent.url", "")
	}
	switch strings.Trim(host, "[]") {
	case "", "0.0.0.0", "::", "localhost":
		// A wildcard bind is reached on loopback.
		host = "127.0.0.1"
	}
	add("url", str("http://"+net.JoinHostPort(strings.Trim(host, "[]"), port)), "The Hermes API server (it stays in Hermes; herald is its client).")
	model, from := b.setting("api_server", "API_SERVER_MODEL_NAME", "model_name")
	if from != "" {
		b.set(from, Mapped, "agent.model", "")
	} else if b.src.Profile != "" {
		model = b.src.Profile
	}
	if model != "" {
		add("model", str(model), "")
	}
	add("key", credential("agent-key"), "")

	explicitOff := false
	if v, path, ok := b.pget("api_server", "enabled"); ok {
		on, _ := boolish(v)
		explicitOff = !on
		if on {
			b.set(path, Mapped, "agent", "")
		} else {
			b.set(path, Mapped, "agent", "the API server is switched off here: herald needs it on")
		}
	}
	if v, ok := b.src.Getenv("API_SERVER_ENABLED"); ok {
		on, _ := boolish(v)
		note := ""
		if !on {
			note = "herald needs the API server on"
		}
		b.set("API_SERVER_ENABLED", Mapped, "agent", note)
	}
	usable := len(keyVal) >= minAPIKey
	if keyFrom != "" {
		if usable {
			b.set(keyFrom, Mapped, "agent.key (credential agent-key)", "")
		} else {
			b.set(keyFrom, Mapped, "agent.key (credential agent-key)", "shorter than 16 characters: Hermes leaves its API server off; replaced by a new key")
		}
	}
	if usable && !explicitOff {
		b.secret("agent-key", keyFrom, keyVal)
		return
	}
	if usable {
		b.secret("agent-key", keyFrom, keyVal)
	} else {
		b.secrets["agent-key"] = Secret{Name: "agent-key", From: "generated", Generate: true}
	}
	b.plan.Notices = append(b.plan.Notices, "The Hermes API server is not enabled, and herald sends every turn to it (agent.kind: hermes).")
	if !usable {
		b.plan.Notices = append(b.plan.Notices,
			"Hermes starts its API server only with an API_SERVER_KEY of at least 16 characters. herald generated one into "+b.credDir+"/agent-key; add it to "+b.envPath()+" (the second command prints nothing):",
			"    echo 'API_SERVER_ENABLED=true' >> "+b.envPath(),
			"    printf 'API_SERVER_KEY=%s\\n' \"$(cat "+b.credDir+"/agent-key)\" >> "+b.envPath())
	}
	if explicitOff {
		b.plan.Notices = append(b.plan.Notices, "config.yaml switches the API server off (api_server enabled: false): set it to true.")
	}
	b.plan.Notices = append(b.plan.Notices, "Then restart the Hermes gateway: "+b.hermesCmd("gateway restart"))
}

func (b *builder) envPath() string { return b.src.Home + "/.env" }

func (b *builder) hermesCmd(args string) string { return b.plan.hermesCmd(args) }

// --- dispatch ---

func (b *builder) mapDispatch() {
	add := func(k string, v *yaml.Node, comment string) { b.dispatch = append(b.dispatch, key(k, comment), v) }

	mode, from := "", ""
	if v, ok := b.src.Getenv("HERMES_GATEWAY_BUSY_INPUT_MODE"); ok {
		mode, from = strings.ToLower(v), "HERMES_GATEWAY_BUSY_INPUT_MODE"
		b.overridden("display.busy_input_mode", from)
	} else if v, ok := b.dig("display.busy_input_mode"); ok && scalar(v) != "" {
		mode, from = strings.ToLower(scalar(v)), "display.busy_input_mode"
	}
	policy, note := "interrupt", ""
	switch mode {
	case "queue":
		policy = "queue"
	case "steer":
		policy, note = "queue", "herald cannot steer a running turn; queue is the nearest (steer falls back to queue in Hermes too)"
	case "interrupt":
	default:
		if from != "" {
			note = fmt.Sprintf("%q is interrupt in Hermes", mode)
		}
	}
	if from == "" {
		from = "display.busy_input_mode"
		note = "not set: Hermes' default interrupt is kept (herald's own default is queue)"
	}
	b.set(from, Mapped, "dispatch.busy_policy: "+policy, note)
	add("busy_policy", plain(policy), "Hermes' busy input mode.")

	if v, path, ok := b.global("group_sessions_per_user"); ok {
		if on, ok := boolish(v); ok {
			add("group_sessions_per_user", boolNode(on), "")
			b.set(path, Mapped, "dispatch.group_sessions_per_user", "")
		} else {
			b.set(path, Unsupported, "", "not a boolean; ignored")
		}
	}
	if v, path, ok := b.global("max_concurrent_sessions"); ok {
		n, err := strconv.Atoi(scalar(v))
		if err == nil && n > 0 {
			add("max_concurrent_turns", plain(strconv.Itoa(n)), "")
			b.set(path, Mapped, "dispatch.max_concurrent_turns", "one turn runs per session at a time, so the same bound")
		} else {
			b.set(path, NotNeeded, "", "not a positive number: no limit in Hermes; herald's default is 64 turns at once")
		}
	}
	b.mapStreaming(add)

	if v, path, ok := b.global("unauthorized_dm_behavior"); ok {
		b.unauthorized, b.unauthorizedFrom = strings.ToLower(scalar(v)), path
	}
}

func (b *builder) mapStreaming(add func(string, *yaml.Node, string)) {
	prefix := "streaming"
	m := asMap(b.src.Config["streaming"])
	if m == nil {
		prefix = "gateway.streaming"
		v, _ := b.dig(prefix)
		m = asMap(v)
	}
	if m == nil {
		return
	}
	enabled, from := false, ""
	if v, ok := m["enabled"]; ok {
		enabled, _ = boolish(v)
		from = prefix + ".enabled"
	} else if v, ok := m["mode"]; ok {
		s, isBool := v.(bool)
		enabled = (isBool && s) || (!isBool && strings.ToLower(scalar(v)) != "off")
		from = prefix + ".mode"
	}
	if from != "" {
		b.set(from, Mapped, "dispatch.stream_edits", "")
	}
	if t, ok := m["transport"]; ok {
		b.set(prefix+".transport", Mapped, "dispatch.stream_edits", "herald streams by editing one message (no Telegram draft messages)")
		_ = t
	}
	if !enabled {
		return
	}
	add("stream_edits", boolNode(true), "")
	if v, ok := m["edit_interval"]; ok {
		f, err := strconv.ParseFloat(scalar(v), 64)
		if err == nil && f > 0 {
			add("stream_edit_interval", duration(time.Duration(f*float64(time.Second)).Round(time.Millisecond)), "")
			b.set(prefix+".edit_interval", Mapped, "dispatch.stream_edit_interval", "")
		}
	}
}
