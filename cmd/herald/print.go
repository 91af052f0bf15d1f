// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/doctor"
	"github.com/heraldgw/herald/pkg/store"
)

// The human tables of status, doctor and pairing; --json prints the
// structs themselves.

// printStatus writes doc as `herald status` shows it.
func printStatus(w io.Writer, doc *doctor.StatusDoc) {
	switch u := doc.Unit; {
	case doc.UnitError != "":
		fmt.Fprintf(w, "%s: systemd not reachable: %s\n", doc.UnitName, doc.UnitError)
	case u.LoadState == "not-found":
		fmt.Fprintf(w, "%s: not installed (LoadState=not-found)\n", doc.UnitName)
	default:
		fmt.Fprintf(w, "%s: %s (%s)", doc.UnitName, u.ActiveState, u.SubState)
		if !u.ActiveEnterTimestamp.IsZero() && u.ActiveState == "active" {
			fmt.Fprintf(w, " since %s (%s ago)", u.ActiveEnterTimestamp.Format(time.RFC3339), time.Since(u.ActiveEnterTimestamp).Round(time.Second))
		}
		if u.MainPID != 0 {
			fmt.Fprintf(w, ", MainPID %d", u.MainPID)
		}
		fmt.Fprintf(w, ", %d restarts\n", u.NRestarts)
		fmt.Fprintf(w, "  last result: %s; main process: %s\n", u.Result, doctor.DescribeExit(u.ExecMainCode, u.ExecMainStatus))
		if u.StatusText != "" {
			fmt.Fprintf(w, "  status: %s\n", u.StatusText)
		}
	}
	if c := doc.Boot; c != nil {
		fmt.Fprintf(w, "  %s %s: %s\n  fix: %s\n", c.Result, c.Name, c.Detail, c.Fix)
	}
	if doc.HeraldError != "" {
		fmt.Fprintf(w, "herald: %s\n", doc.HeraldError)
		return
	}
	r := doc.Herald
	fmt.Fprintf(w, "%s, pid %d, up %s, %s, config %s\n", r.Version, r.PID, time.Since(r.StartedAt).Round(time.Second), r.State, r.Config)
	if r.AgentMode != "" {
		fmt.Fprintf(w, "  agent: hermes via %s%s\n", strings.ReplaceAll(r.AgentMode, "_", " "), noteSuffix(r.AgentNote))
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, p := range r.Platforms {
		detail := ""
		if p.Phase == "reconnecting" && !p.RetryAt.IsZero() {
			detail = retryDetail(time.Until(p.RetryAt))
		}
		if p.Error != "" {
			detail = strings.TrimPrefix(detail+"; "+p.Error, "; ")
		}
		if p.Alarm != "" {
			detail = strings.TrimPrefix(detail+"; ALARM: "+p.Alarm, "; ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\tsince %s\t%s\n", p.Name, p.Type, p.Phase, time.Since(p.Since).Round(time.Second), detail)
	}
	tw.Flush()
	fmt.Fprintf(w, "  turns in flight %d, queued %d, sessions %d, replies pending %d, oldest pending %s\n",
		r.TurnsInFlight, r.QueueDepth, r.Sessions, r.RepliesPending, (time.Duration(r.OldestPendingAge * float64(time.Second))).Round(time.Second))
	if r.LastReloadError != "" {
		fmt.Fprintf(w, "  last reload rejected: %s\n", r.LastReloadError)
	}
	printStore(w, r.Store)
	printCluster(w, r.Cluster, time.Now())
	printUsers(w, r.Users)
}

// printCluster is the cluster section of `herald status`: this node's
// membership and leases, the other nodes, the holders of the leases, the
// leases nobody holds, and the NATS connection.
func printCluster(w io.Writer, c *adminapi.ClusterReport, now time.Time) {
	if c == nil {
		return
	}
	ago := func(t time.Time) string { return now.Sub(t).Round(time.Second).String() }
	member := "member"
	if !c.Member {
		member = "NOT A MEMBER (holds no lease)"
	}
	fmt.Fprintf(w, "  cluster: node %s, %s, %d members, NATS %s, %d member changes\n", c.Node, member, len(c.Members), c.NATS, c.MemberChanges)
	platforms := "none"
	if len(c.Platforms) > 0 {
		platforms = strings.Join(c.Platforms, ", ")
	}
	fmt.Fprintf(w, "    this node: %d of %d partitions (%s), platforms %s\n", len(c.Partitions), c.PartitionCount, doctor.Ranges(c.Partitions), platforms)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, m := range c.Members {
		name, addr, plats := m.Node, m.HTTP, strings.Join(m.Platforms, ",")
		if addr == "" {
			addr = "-"
		}
		if plats == "" {
			plats = "-"
		}
		if m.Node == c.Node {
			name += " (this node)"
		}
		fmt.Fprintf(tw, "    %s\t%s\tup %s\t%s\tpartitions %d\tplatforms %s\n", name, m.Version, ago(m.Started), addr, c.PartitionHolders[m.Node], plats)
	}
	tw.Flush()
	if len(c.PlatformHolders) > 0 {
		fmt.Fprintf(w, "    platform leases: %s\n", doctor.Holders(c.PlatformHolders))
	}
	if len(c.UnheldPartitions)+len(c.UnheldPlatforms) > 0 {
		var parts []string
		if len(c.UnheldPartitions) > 0 {
			parts = append(parts, fmt.Sprintf("%d partitions (%s)", len(c.UnheldPartitions), doctor.Ranges(c.UnheldPartitions)))
		}
		if len(c.UnheldPlatforms) > 0 {
			parts = append(parts, "platforms "+strings.Join(c.UnheldPlatforms, ", "))
		}
		fmt.Fprintf(w, "    UNHELD: %s, for %s\n", strings.Join(parts, " and "), ago(c.UnheldSince))
	}
	for _, d := range c.Declined {
		fmt.Fprintf(w, "    DECLINED: %s cannot run on this node (%s): handed over, %s\n", d.Platform, d.Reason, doctor.DeclinedRetry(d, now))
	}
	if c.LastError != "" {
		fmt.Fprintf(w, "    last error %s ago: %s\n", ago(c.LastErrorAt), c.LastError)
	}
}

// retryDetail describes a reconnection due in wait. A retry time already
// past means the attempt is under way: never a negative duration.
func retryDetail(wait time.Duration) string {
	if wait = wait.Round(time.Second); wait > 0 {
		return "retry in " + wait.String()
	}
	return "retrying now"
}

func noteSuffix(note string) string {
	if note == "" {
		return ""
	}
	return " (" + note + ")"
}

// printStore is the store's line in `herald status`.
func printStore(w io.Writer, r *adminapi.StoreReport) {
	if r == nil {
		return
	}
	if r.Backend == "nats" {
		if r.Writable {
			fmt.Fprintf(w, "  store (nats) %s: connected\n", r.Path)
			return
		}
		fmt.Fprintf(w, "  store (nats) %s: DEGRADED since %s (%s ago): %s\n",
			r.Path, r.Since.Format(time.RFC3339), time.Since(r.Since).Round(time.Second), r.Cause)
		if r.Unrecorded > 0 {
			fmt.Fprintf(w, "    %d finished turns keep their reply in memory until the store takes it\n", r.Unrecorded)
		}
		if r.Error != "" {
			fmt.Fprintf(w, "    error: %s\n", r.Error)
		}
		return
	}
	space := store.Space{Free: r.FreeBytes, Total: r.TotalBytes}
	if r.Writable {
		fmt.Fprintf(w, "  store %s: writable, %s\n", r.Path, space)
		return
	}
	fmt.Fprintf(w, "  store %s: DEGRADED, cannot be written since %s (%s ago): %s, %s\n",
		r.Path, r.Since.Format(time.RFC3339), time.Since(r.Since).Round(time.Second), r.Cause, space)
	if r.Unrecorded > 0 {
		fmt.Fprintf(w, "    %d finished turns keep their reply in memory until the store takes it\n", r.Unrecorded)
	}
	fmt.Fprintf(w, "    error: %s\n", r.Error)
}

// printUsers writes the top users, each against the limits (- when there
// is none).
func printUsers(w io.Writer, u *adminapi.UsersReport) {
	if u == nil {
		return
	}
	limit := func(n int) string {
		if n == 0 {
			return "-"
		}
		return fmt.Sprint(n)
	}
	fmt.Fprintln(w, "  top users today (limits.per_user):")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, t := range u.Top {
		fmt.Fprintf(tw, "    %s\t%s\t%d/%s today\t%d/%s this minute\n", t.Platform, t.UserID, t.Today, limit(u.TurnsPerDay), t.ThisMinute, limit(u.TurnsPerMinute))
	}
	tw.Flush()
}

// printChecks writes checks as a table, with the fix of each that did
// not pass.
func printChecks(w io.Writer, checks []doctor.Check) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Result, c.Name, c.Detail)
		if c.Fix != "" && c.Result != doctor.Pass {
			fmt.Fprintf(tw, "\t\tfix: %s\n", c.Fix)
		}
	}
	tw.Flush()
}

// printPairings writes l as two tables.
func printPairings(out io.Writer, l adminapi.PairingList) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PENDING\tPLATFORM\tUSER\tNAME\tCHAT\tEXPIRES")
	for _, p := range l.Pending {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Code, p.Platform, p.UserID, p.UserName, p.ChatID, p.ExpiresAt.Local().Format(time.DateTime))
	}
	fmt.Fprintln(tw, "\nAPPROVED\tPLATFORM\tUSER\tSINCE")
	for _, u := range l.Approved {
		fmt.Fprintf(tw, "\t%s\t%s\t%s\n", u.Platform, u.UserID, u.ApprovedAt.Local().Format(time.DateTime))
	}
	tw.Flush()
}
