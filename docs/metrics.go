// Package docs is the documentation. The only Go here gives tests what the
// documentation promises, so that code and documentation cannot drift.
package docs

import (
	_ "embed"
	"regexp"
	"strings"
)

//go:embed operations.md
var operations string

// metricRow is a table row whose first cell is a metric name in backticks.
var metricRow = regexp.MustCompile("^\\| `([a-z][a-z0-9_]*)` \\|")

// MetricNames lists the metrics operations.md documents: the first cell of
// each table row of its "Metrics" section, in order.
func MetricNames() []string {
	_, section, _ := strings.Cut(operations, "\n## Metrics\n")
	section, _, _ = strings.Cut(section, "\n## ")
	var names []string
	for _, line := range strings.Split(section, "\n") {
		if m := metricRow.FindStringSubmatch(line); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}
