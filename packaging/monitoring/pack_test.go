// SPDX-License-Identifier: Apache-2.0

// The operations pack (rules and dashboard) must name only what herald
// exports: these tests take the metric names and labels from herald's
// registry (pkg/metrics) and check every PromQL expression against them.
// promtool checks syntax and behaviour (make rules-test).
package monitoring_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/heraldgw/herald/pkg/metrics"
)

// exported returns herald's metric families by name, with the series
// names a family produces (histograms: _bucket, _sum, _count; summaries:
// _sum, _count) mapped to their family.
func exported(t *testing.T) map[string]metrics.Info {
	t.Helper()
	infos, err := metrics.New("test").Describe()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]metrics.Info{}
	for _, in := range infos {
		out[in.Name] = in
		switch in.Type {
		case "histogram":
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				h := in
				if s == "_bucket" {
					h.Labels = append(slices.Clone(in.Labels), "le")
				}
				out[in.Name+s] = h
			}
		case "summary":
			for _, s := range []string{"_sum", "_count"} {
				out[in.Name+s] = in
			}
		}
	}
	return out
}

// targetLabels are added by Prometheus at scrape time.
var targetLabels = []string{"job", "instance"}

var (
	stringRE   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	grafanaVar = regexp.MustCompile(`\$\{?\w+\}?`)
	rangeRE    = regexp.MustCompile(`\[[^\]]*\]`)
	groupingRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	offsetRE   = regexp.MustCompile(`\boffset\s+-?\w+`)
	// labelValuesRE: Grafana's label_values(selector, label) variable query.
	labelValuesRE = regexp.MustCompile(`label_values\((.*),\s*\w+\s*\)`)
	selectorRE    = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}`)
	matcherRE     = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	tokenRE       = regexp.MustCompile(`\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
)

var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true,
	"without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true, "atan2": true,
}

// selector is one metric reference of an expression and the label names
// its matchers use.
type selector struct {
	metric string
	labels []string
}

// selectors returns the metric references of a PromQL expression. It is a
// lexer, not a parser: strings, ranges, grouping clauses and Grafana
// variables are removed, and every remaining identifier not followed by
// "(" and not a keyword is a metric name.
func selectors(expr string) []selector {
	if m := labelValuesRE.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	// Label names of matchers, read before strings are blanked.
	var out []selector
	noStrings := stringRE.ReplaceAllString(expr, `""`)
	noStrings = grafanaVar.ReplaceAllString(noStrings, "")
	for _, m := range selectorRE.FindAllStringSubmatch(noStrings, -1) {
		s := selector{metric: m[1]}
		for _, l := range matcherRE.FindAllStringSubmatch(m[2], -1) {
			s.labels = append(s.labels, l[1])
		}
		if s.metric == "" {
			// {__name__="x"} style: not used by the pack.
			s.metric = "{" + m[2] + "}"
		}
		out = append(out, s)
	}
	rest := selectorRE.ReplaceAllString(noStrings, "$1")
	rest = rangeRE.ReplaceAllString(rest, "")
	rest = groupingRE.ReplaceAllString(rest, "")
	rest = offsetRE.ReplaceAllString(rest, "")
	rest = strings.ReplaceAll(rest, `""`, "")
	for _, m := range tokenRE.FindAllStringSubmatch(rest, -1) {
		tok := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(m[0]), "("))
		if m[1] != "" || keywords[strings.ToLower(tok)] || (tok[0] >= '0' && tok[0] <= '9') {
			continue
		}
		if !slices.ContainsFunc(out, func(s selector) bool { return s.metric == tok }) {
			out = append(out, selector{metric: tok})
		}
	}
	return out
}

// problems checks the expressions' selectors: each names a metric herald
// exports or a recording rule of the pack, with labels that metric has.
func problems(exprs map[string]string, known map[string]metrics.Info, recorded map[string]bool) []string {
	var out []string
	for where, expr := range exprs {
		sels := selectors(expr)
		if len(sels) == 0 {
			out = append(out, where+": names no metric: "+expr)
		}
		for _, s := range sels {
			if recorded[s.metric] {
				continue
			}
			info, ok := known[s.metric]
			if !ok {
				out = append(out, where+": "+s.metric+" is not a metric herald exports")
				continue
			}
			for _, l := range s.labels {
				if !slices.Contains(info.Labels, l) && !slices.Contains(targetLabels, l) {
					out = append(out, where+": "+s.metric+" has no label "+l)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile("herald.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	return rf
}

// ruleExprs returns the rules' expressions by rule name, and the names of
// the recording rules.
func ruleExprs(t *testing.T) (map[string]string, map[string]bool) {
	exprs, recorded := map[string]string{}, map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if r.Record != "" {
				name = r.Record
				recorded[r.Record] = true
			}
			exprs["herald.rules.yml: "+name] = r.Expr
		}
	}
	return exprs, recorded
}

func TestRulesNameExportedMetrics(t *testing.T) {
	exprs, recorded := ruleExprs(t)
	if len(exprs) == 0 {
		t.Fatal("no rules found")
	}
	for _, p := range problems(exprs, exported(t), recorded) {
		t.Error(p)
	}
}

// TestAlertsComplete: every alert has a severity, a summary and a
// description naming the instance and the first command to run.
func TestAlertsComplete(t *testing.T) {
	n := 0
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			d := r.Annotations["description"]
			if !strings.Contains(d, "$labels.instance") {
				t.Errorf("%s: description does not name the instance", r.Alert)
			}
			if !strings.Contains(d, "`herald ") && !strings.Contains(d, "`journalctl -u herald") {
				t.Errorf("%s: description names no command to run", r.Alert)
			}
		}
	}
	if n < 10 {
		t.Errorf("%d alerts, want the pack's (at least 10)", n)
	}
}

// dashboardExprs returns every PromQL expression of the dashboard: panel
// targets (also inside rows), annotations and variable queries.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("herald-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels      []panel `json:"panels"`
		Annotations struct {
			List []struct {
				Name string `json:"name"`
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				out["dashboard panel "+p.Title+" "+tg.RefID] = tg.Expr
			}
		}
	}
	walk(d.Panels)
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out["dashboard annotation "+a.Name] = a.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		out["dashboard variable "+v.Name] = q.Query
	}
	return out
}

type panel struct {
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func TestDashboardNamesExportedMetrics(t *testing.T) {
	exprs := dashboardExprs(t)
	_, recorded := ruleExprs(t)
	for _, p := range problems(exprs, exported(t), recorded) {
		t.Error(p)
	}
	// What the dashboard must show.
	all := ""
	for _, e := range exprs {
		all += e + "\n"
	}
	for _, want := range []string{
		"herald_adapter_state", "herald:inbound_messages:rate5m", "herald:outbound_messages:rate5m",
		"herald:turn_duration_seconds:p99_5m", "herald_turns_in_flight", "herald_queue_depth",
		"herald:delivery_retries:rate5m", "herald_turn_duration_seconds_bucket", "herald:agent_turns:rate5m",
		"herald_store_size_bytes", "herald_start_time_seconds", "herald_reloads_total",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the dashboard does not use %s", want)
		}
	}
}

// TestSelectorsCatchMistakes: the check is not vacuous. A misspelt metric,
// a label the metric lacks and a recording rule that is not defined are
// reported; functions, keywords, grouping labels, ranges and Grafana
// variables are not mistaken for metric names.
func TestSelectorsCatchMistakes(t *testing.T) {
	known := exported(t)
	recorded := map[string]bool{"herald:x:rate5m": true}
	got := problems(map[string]string{
		"misspelt":  `rate(herald_inbound_message_total[5m])`,
		"label":     `herald_adapter_up{platform="tg", chat_id="1"}`,
		"recording": `herald:y:rate5m`,
		"fine": `sum by (platform, le) (rate(herald_turn_duration_seconds_bucket{job=~"$job", le="1"}[$__rate_interval] offset 5m))
			/ ignoring(le) group_left herald:x:rate5m > bool 0.5 and on (instance) herald_build_info unless herald_queue_depth > 1e3`,
		"variable": `label_values(herald_build_info{job=~"$job"}, instance)`,
	}, known, recorded)
	want := []string{
		"label: herald_adapter_up has no label chat_id",
		"misspelt: herald_inbound_message_total is not a metric herald exports",
		"recording: herald:y:rate5m is not a metric herald exports",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
