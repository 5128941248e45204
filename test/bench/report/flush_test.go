package report

import (
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
)

func TestFlushTable(t *testing.T) {
	var b strings.Builder
	FlushTable(&b, []results.Flush{
		{Entries: 1000000, Mode: "whole", SyncSeconds: 12, FlushSeconds: 11.5},
		{Entries: 0, Mode: "whole", SyncSeconds: 0.004, FlushSeconds: 0.0005},
		{Entries: 0, Mode: "filtered", SyncSeconds: 0.003, FlushSeconds: 0.0004},
	})
	want := "| conntrack entries | sync, whole | flush, whole | sync, filtered | flush, filtered |\n" +
		"|---:|---:|---:|---:|---:|\n" +
		"| 0 | 4 ms | 500 µs | 3 ms | 400 µs |\n" +
		"| 1000000 | 12 s | 11.5 s | - | - |\n"
	if got := b.String(); got != want {
		t.Errorf("FlushTable() =\n%s\nwant\n%s", got, want)
	}
}
