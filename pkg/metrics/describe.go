// SPDX-License-Identifier: Apache-2.0

package metrics

// docs/metrics.md is generated from Describe; a test fails when it is stale.
//go:generate go run ../../scripts/genmetrics -o ../../docs/metrics.md

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Info describes one metric family of the registry: what docs/metrics.md
// lists and what the operations pack's PromQL may name.
type Info struct {
	Name   string
	Type   string // counter, gauge, histogram, summary, untyped
	Help   string
	Labels []string
}

// descRE parses prometheus.Desc.String(), the only accessor a Desc has.
var descRE = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), unit: "(?:[^"\\]|\\.)*", constLabels: \{(.*)\}, variableLabels: \{(.*)\}\}$`)

// Describe lists every metric family registered on m.Registry, sorted by
// name, including those without a series yet (a vector no label value was
// used with). It reads the registry's descriptors, so a metric added to New
// is listed without being named anywhere else.
func (m *Metrics) Describe() ([]Info, error) {
	byDesc := map[*prometheus.Desc]*Info{}
	var order []*prometheus.Desc
	descs := make(chan *prometheus.Desc)
	go func() { m.Registry.Describe(descs); close(descs) }()
	var errs []string
	for d := range descs {
		sm := descRE.FindStringSubmatch(d.String())
		if sm == nil {
			errs = append(errs, "cannot parse "+d.String())
			continue
		}
		name, _ := strconv.Unquote(sm[1])
		help, _ := strconv.Unquote(sm[2])
		var labels []string
		for l := range strings.SplitSeq(sm[4], ",") {
			if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
				labels = append(labels, l)
			}
		}
		for l := range strings.SplitSeq(sm[3], ",") {
			if k, _, ok := strings.Cut(l, "="); ok {
				labels = append(labels, k)
			}
		}
		sort.Strings(labels)
		byDesc[d] = &Info{Name: name, Help: help, Labels: labels}
		order = append(order, d)
	}
	// Types: from a collected sample where there is one, else from the
	// kind of vector that owns the descriptor.
	samples := make(chan prometheus.Metric)
	go func() { m.Registry.Collect(samples); close(samples) }()
	for s := range samples {
		info, ok := byDesc[s.Desc()]
		if !ok || info.Type != "" {
			continue
		}
		var pb dto.Metric
		if err := s.Write(&pb); err != nil {
			continue
		}
		info.Type = sampleType(&pb)
	}
	for _, c := range m.fieldCollectors() {
		if dt, ok := c.(descTyper); ok {
			for d, typ := range dt.descTypes() {
				if info, ok := byDesc[d]; ok && info.Type == "" {
					info.Type = typ
				}
			}
			continue
		}
		typ := vectorType(c)
		ch := make(chan *prometheus.Desc, 1)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if info, ok := byDesc[d]; ok && info.Type == "" {
				info.Type = typ
			}
		}
	}
	out := make([]Info, 0, len(order))
	for _, d := range order {
		info := byDesc[d]
		if info.Type == "" {
			errs = append(errs, "no type known for "+info.Name)
		}
		out = append(out, *info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(errs) > 0 {
		return out, fmt.Errorf("metrics: describe: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

func sampleType(pb *dto.Metric) string {
	switch {
	case pb.Counter != nil:
		return "counter"
	case pb.Gauge != nil:
		return "gauge"
	case pb.Histogram != nil:
		return "histogram"
	case pb.Summary != nil:
		return "summary"
	}
	return "untyped"
}

func vectorType(c prometheus.Collector) string {
	switch c.(type) {
	case *prometheus.CounterVec:
		return "counter"
	case *prometheus.GaugeVec:
		return "gauge"
	case *prometheus.HistogramVec:
		return "histogram"
	case *prometheus.SummaryVec:
		return "summary"
	}
	return ""
}

// descTyper is a custom collector that may have no sample at a given
// moment and says the type of each of its descriptors.
type descTyper interface {
	descTypes() map[*prometheus.Desc]string
}

// fieldCollectors returns the metric vectors and typed custom collectors
// held in m's fields (and its nested structs'): the collectors that can be
// registered without a sample.
func (m *Metrics) fieldCollectors() []prometheus.Collector {
	var out []prometheus.Collector
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := range v.NumField() {
			f := v.Field(i)
			if !f.CanAddr() {
				continue
			}
			// The fields are unexported; read them without the reflect
			// export check. Nothing is written.
			f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
			if f.Kind() == reflect.Struct {
				walk(f)
				continue
			}
			if f.Kind() == reflect.Pointer && !f.IsNil() && f.Elem().Kind() == reflect.Struct {
				if c, ok := f.Interface().(prometheus.Collector); ok {
					if _, typed := c.(descTyper); typed || vectorType(c) != "" {
						out = append(out, c)
					}
					continue
				}
				if f.Type() != reflect.TypeFor[*Metrics]() {
					walk(f.Elem())
				}
			}
		}
	}
	walk(reflect.ValueOf(m).Elem())
	return out
}
