// SPDX-License-Identifier: Apache-2.0

package hermes

import (
	"bytes"
	"fmt"
	"strings"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"
)

// homeLabel names the Hermes home (and profile) in the YAML header.
func (b *builder) homeLabel() string {
	if b.src.Profile != "" {
		return fmt.Sprintf("%s (profile %s)", b.src.Home, b.src.Profile)
	}
	return b.src.Home
}

// render encodes the herald configuration. Values are typed nodes: the
// encoder quotes every string that would read back as another type, so
// the file parses to exactly these values.
func (b *builder) render() []byte {
	platforms := &yaml.Node{Kind: yaml.MappingNode, Content: b.platforms}
	if len(b.platforms) == 0 {
		platforms.Style = yaml.FlowStyle
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		key("agent", "The agent stays in Hermes; herald sends it each turn."), {Kind: yaml.MappingNode, Content: b.agent},
		key("dispatch", ""), {Kind: yaml.MappingNode, Content: b.dispatch},
		key("platforms", "Secrets are files in the credentials directory, one per secret (0600)."), platforms,
	}}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root},
		HeadComment: "herald configuration written by `herald migrate hermes` from " + b.homeLabel() + ".\n" +
			"Edit it freely: a second run shows the difference and replaces nothing\n" +
			"without --force. Every other key keeps its default (man herald(8))."}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		// Only a programming error gets here: the nodes are built above.
		panic("hermes: encode: " + err.Error())
	}
	_ = enc.Close()
	return buf.Bytes()
}

// Table renders the mapping table.
func (p *Plan) Table() string {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HERMES SETTING\tSTATUS\tHERALD SETTING\tNOTE")
	for _, r := range p.Rows {
		h := r.Herald
		if h == "" {
			h = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", oneLine(r.Setting), r.Status, h, oneLine(r.Note))
	}
	_ = tw.Flush()
	return buf.String()
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
