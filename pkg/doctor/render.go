package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as one indented JSON document.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people: the node's facts, the risk in
// plain words, a table of findings, what --fix did, and what could not be
// inspected.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	writeFacts(&b, r.Node)
	writeRisk(&b, r.Risk)
	if err := writeFindings(&b, r.Findings); err != nil {
		return err
	}
	writeFixed(&b, r.Fixed)
	if len(r.Gaps) > 0 {
		b.WriteString("\nCould not inspect:\n")
		for _, g := range r.Gaps {
			fmt.Fprintf(&b, "  - %s\n", g)
		}
	}
	fmt.Fprintf(&b, "\n%d problems, %d warnings.\n", r.Count(SeverityProblem), r.Count(SeverityWarning))
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFacts(b *strings.Builder, n NodeFacts) {
	fmt.Fprintf(b, "Kernel: %s\n", orUnknown(n.KernelRelease))
	b.WriteString("IPVS sysctls:")
	for _, name := range sysctlNames() {
		v, ok := n.Sysctls[name]
		short := name[strings.LastIndex(name, "/")+1:]
		if ok {
			fmt.Fprintf(b, " %s=%d", short, v)
		} else {
			fmt.Fprintf(b, " %s=?", short)
		}
	}
	fmt.Fprintf(b, "\nIPVS: %d virtual servers, %d real servers (%d at weight 0)\n",
		n.VirtualServers, n.RealServers, n.WeightZero)
	if n.DummyPresent {
		fmt.Fprintf(b, "%s: %d addresses\n", n.DummyDevice, n.DummyAddresses)
	} else {
		fmt.Fprintf(b, "%s: missing\n", n.DummyDevice)
	}
	fmt.Fprintf(b, "UDP conntrack entries: %d\n", n.UDPConntrack)
	writeGate(b, n.ImmediateTermination)
	if n.Services < 0 {
		b.WriteString("Cluster: not asked (pass --kubeconfig to compare with Services and EndpointSlices)\n")
	} else {
		fmt.Fprintf(b, "Cluster: %d Services, %d EndpointSlices\n", n.Services, n.EndpointSlices)
	}
}

func writeGate(b *strings.Builder, g GateFact) {
	fmt.Fprintf(b, "Gate %s: %s", gateName, g.State)
	switch {
	case g.Source != "" && g.Reason != "":
		fmt.Fprintf(b, " (%s: %s)", g.Source, g.Reason)
	case g.Source != "":
		fmt.Fprintf(b, " (from %s; the Service annotation %s overrides it per Service)", g.Source, "ipvs-proxy.kubernetes.io/termination-policy")
	case g.Reason != "":
		fmt.Fprintf(b, " (%s)", g.Reason)
	}
	b.WriteString("\n")
}

func writeRisk(b *strings.Builder, risk Risk) {
	fmt.Fprintf(b, "\nSource-port reuse risk: %s\n", strings.ToUpper(string(risk.Level)))
	for _, r := range risk.Reasons {
		fmt.Fprintf(b, "  - [%s] %s\n", r.Level, r.Reason)
		if r.Fix != "" {
			fmt.Fprintf(b, "    Fix: %s\n", r.Fix)
		}
	}
}

func writeFindings(b *strings.Builder, findings []Finding) error {
	if len(findings) == 0 {
		b.WriteString("\nNo findings.\n")
		return nil
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tKIND\tOBJECT\tSERVICE\tCONNS (ACT/INACT)\tFIX\tDETAIL")
	for _, f := range findings {
		conns := "-"
		if f.Connections != nil {
			conns = fmt.Sprintf("%d/%d", f.Connections.Active, f.Connections.Inactive)
		}
		fix := "-"
		if f.Repair != nil {
			fix = "--fix"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Severity, f.Kind, f.Object, orDash(f.Service), conns, fix, f.Message)
	}
	return tw.Flush()
}

func writeFixed(b *strings.Builder, fixed []FixResult) {
	if len(fixed) == 0 {
		return
	}
	b.WriteString("\nFixed:\n")
	for _, res := range fixed {
		fmt.Fprintf(b, "  %s: %s", res.Object, strings.Join(res.Done, "; "))
		if res.Error != "" {
			if len(res.Done) > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(b, "FAILED: %s", res.Error)
		}
		b.WriteString("\n")
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
