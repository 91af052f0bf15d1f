// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/agent"
)

// maxLabelValues bounds the distinct values one label of one metric may
// take, apart from platform (the configured instance names): enough for
// every fixed enumeration herald uses, far below anything that grows with
// traffic.
const maxLabelValues = 16

var enumValue = regexp.MustCompile(`^[a-z][a-z0-9_ -]*$`)

// labelProblems walks herald's metric families and reports every label
// whose values are not bounded: a platform label that is not a configured
// platform, a value containing one of the ids of the load, a value that is
// not a lower-case word, more than maxLabelValues values for one label, or
// a family with more series than its labels' bounds allow.
func labelProblems(families []*dto.MetricFamily, platforms []string, ids []string) []string {
	var out []string
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, "herald_") || name == "herald_build_info" {
			continue
		}
		values := map[string]map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				k, v := l.GetName(), l.GetValue()
				if values[k] == nil {
					values[k] = map[string]bool{}
				}
				values[k][v] = true
			}
		}
		bound := 1
		for k, vs := range values {
			if k == "platform" {
				for v := range vs {
					if !slices.Contains(platforms, v) {
						out = append(out, fmt.Sprintf("%s: platform=%q is not a configured platform", name, v))
					}
				}
				bound *= len(platforms)
				continue
			}
			if len(vs) > maxLabelValues {
				out = append(out, fmt.Sprintf("%s: label %s has %d values (more than %d)", name, k, len(vs), maxLabelValues))
			}
			for v := range vs {
				if !enumValue.MatchString(v) {
					out = append(out, fmt.Sprintf("%s: %s=%q is not a fixed lower-case value", name, k, v))
				}
				for _, id := range ids {
					if strings.Contains(v, id) {
						out = append(out, fmt.Sprintf("%s: %s=%q carries the id %q", name, k, v, id))
						break
					}
				}
			}
			bound *= maxLabelValues
		}
		if n := len(f.GetMetric()); n > bound {
			out = append(out, fmt.Sprintf("%s: %d series, more than its labels allow (%d)", name, n, bound))
		}
	}
	sort.Strings(out)
	return out
}

// TestMetricLabelsBounded: after 1,000 distinct chats with distinct
// senders (refused ones, duplicates, agent failures and failed deliveries
// among them), every herald metric's labels hold only the platform name
// and fixed values: no chat id, no user id, no series per chat.
func TestMetricLabelsBounded(t *testing.T) {
	const chats = 1000
	var allowed []string
	for i := 0; i < chats; i += 2 {
		allowed = append(allowed, fmt.Sprintf("user%04d", i))
	}
	e := newEnv(t, Options{MaxAttempts: 2}, Policy{AllowedUsers: allowed, Unauthorized: "reply", UnauthorizedText: "no", GroupSessionsPerUser: true})
	e.agent.errs = []error{agent.ErrRejected, fmt.Errorf("agent: %w", agent.ErrUnavailable), agent.ErrRejected}
	e.ad.fail = []error{fmt.Errorf("gone: %w", adapter.ErrPermanent), fmt.Errorf("x: %w", adapter.ErrTemporary), adapter.ErrAmbiguous}
	var ids []string
	for i := range chats {
		chat, user := fmt.Sprintf("chat%04d", i), fmt.Sprintf("user%04d", i)
		ids = append(ids, chat, user)
		e.deliver(in(fmt.Sprint("ev", i), chat, user, "hello"))
		if i%100 == 0 {
			e.deliver(in(fmt.Sprint("ev", i), chat, user, "hello")) // a duplicate
		}
	}
	// Every allowed sender gets a reply (or its failure notice), every
	// refused one a refusal: 1,000 sends at least, bar the failed ones.
	e.ad.waitSent(t, chats-2)
	waitPending(t, e.st, 0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := e.st.Stats(t.Context())
		if err == nil && st.PendingOutbox == 0 {
			break
		}
		if time.Now().After(deadline) {
			ob, _ := e.st.PendingOutbox(t.Context())
			t.Fatalf("outbox not drained: %+v %v\npending: %+v", st, err, ob)
		}
		time.Sleep(20 * time.Millisecond)
	}

	families, err := e.m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range labelProblems(families, []string{"p"}, ids) {
		t.Error(p)
	}
	// The load did reach the labelled metrics.
	seen := map[string]bool{}
	for _, f := range families {
		if len(f.GetMetric()) > 0 && len(f.GetMetric()[0].GetLabel()) > 0 {
			seen[f.GetName()] = true
		}
	}
	for _, name := range []string{"herald_inbound_messages_total", "herald_outbound_messages_total", "herald_turn_duration_seconds", "herald_agent_turns_total"} {
		if !seen[name] {
			t.Errorf("%s has no labelled series after the load", name)
		}
	}
}

// TestLabelProblemsCatchesIDs: the check is not vacuous: a chat id as a
// label value, an unknown platform, a free-text value and an unbounded
// label are reported.
func TestLabelProblemsCatchesIDs(t *testing.T) {
	str := func(s string) *string { return &s }
	series := func(labels ...string) *dto.Metric {
		m := &dto.Metric{}
		for i := 0; i < len(labels); i += 2 {
			m.Label = append(m.Label, &dto.LabelPair{Name: str(labels[i]), Value: str(labels[i+1])})
		}
		return m
	}
	wide := &dto.MetricFamily{Name: str("herald_wide_total")}
	for i := range maxLabelValues + 1 {
		wide.Metric = append(wide.Metric, series("result", fmt.Sprintf("r%c", 'a'+i)))
	}
	got := labelProblems([]*dto.MetricFamily{
		{Name: str("herald_by_chat_total"), Metric: []*dto.Metric{series("platform", "p", "chat", "chat0042")}},
		{Name: str("herald_other_total"), Metric: []*dto.Metric{series("platform", "q")}},
		wide,
		{Name: str("herald_ok_total"), Metric: []*dto.Metric{series("platform", "p", "result", "stored")}},
		{Name: str("herald_user_total"), Metric: []*dto.Metric{series("user", "User 7")}},
	}, []string{"p"}, []string{"chat0042"})
	want := []string{
		`herald_by_chat_total: chat="chat0042" carries the id "chat0042"`,
		`herald_other_total: platform="q" is not a configured platform`,
		`herald_wide_total: label result has 17 values (more than 16)`,
		`herald_user_total: user="User 7" is not a fixed lower-case value`,
		`herald_wide_total: 17 series, more than its labels allow (16)`,
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
