package results

import (
	"fmt"
	"strings"
	"time"
)

// ReportInput is what a report says besides the runs.
type ReportInput struct {
	Title string
	// Generated is when the runs were made.
	Generated time.Time
	// Environment describes the machine and the VM.
	Environment string
	// SVG is the plot's file name next to the report ("" for none).
	SVG string
}

// Markdown writes the report: the scenario 2 and 3 tables, the plot, every run's
// checks, and each run's details.
func Markdown(in ReportInput, runs []*Run) string {
	var b strings.Builder
	failed := 0
	for _, r := range runs {
		if !r.Passed() {
			failed++
		}
	}
	fmt.Fprintf(&b, "# %s\n\n%s: %d runs, %d failed.\n\n%s\n\n", in.Title, in.Generated.UTC().Format(time.RFC3339), len(runs), failed, in.Environment)
	if t := RollingTable(runs); len(t.Rows) > 0 {
		b.WriteString("## Scenario 2: rolling update under source-port reuse\n\n" + rollingLegend + "\n\n" + t.Markdown() + "\n")
		if in.SVG != "" {
			fmt.Fprintf(&b, "![failures over time](%s)\n\n", in.SVG)
		}
	}
	if t := InflightTable(runs); len(t.Rows) > 0 {
		b.WriteString("## Scenario 3: in-flight connections to a lost pod\n\n" + inflightLegend + "\n\n" + t.Markdown() + "\n")
	}
	b.WriteString("## All runs\n\n" + ChecksTable(runs).Markdown() + "\n## Run details\n\n")
	for _, r := range runs {
		b.WriteString("```\n" + FormatRun(r) + "```\n\n")
	}
	return b.String()
}

const rollingLegend = `A client namespace makes short HTTP/1.0 requests to a ClusterIP from a fixed pool of
source ports (SO_REUSEADDR; the server closes first, so the client reuses a port at once
while IPVS still holds the old connection entry). The service's pods are replaced one by
one: new pod ready, old endpoint terminating, removed, its process killed and its network
namespace gone. A failure window joins failures less than 1 s apart; a port outage is the
longest streak of failures of one source port. "Ok but slower than 1 s" counts requests
that succeeded after more than 1 s: a SYN dropped on an old connection entry and
retransmitted by the client 1 s later. Sync latency is from the API write to the kernel
showing the change (polled over netlink).`

const inflightLegend = `Four long-lived connections through a ClusterIP (two per pod), each sending a line every
100 ms and waiting for the answer. One pod is lost: killed with its network intact, or its
network cut first (the veth deleted), its endpoint removed, then killed. Time to failure
is from the kill or the cut until the client's socket reports an error; "hung" means no
error before the client's own deadline.`
