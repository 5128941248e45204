package guest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// heapInuseMetric is the Go collector's heap-in-use gauge (bytes).
const heapInuseMetric = "go_memstats_heap_inuse_bytes"

// Memory is a proxier's memory use.
type Memory struct {
	// RSS is VmRSS from /proc/<pid>/status, in bytes.
	RSS int64
	// HeapInuse is the Go heap in use from the proxier's /metrics, in bytes; -1 when it
	// does not export it.
	HeapInuse int64
}

// MiB formats a byte count in MiB.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (m Memory) String() string {
	heap := "not exported"
	if m.HeapInuse >= 0 {
		heap = MiB(m.HeapInuse)
	}
	return fmt.Sprintf("RSS %s, Go heap in use %s", MiB(m.RSS), heap)
}

// Memory reads the proxier's resident set size and its Go heap in use.
func (p *Proxier) Memory(ctx context.Context) (Memory, error) {
	rss, err := vmRSS(p.cmd.Process.Pid)
	if err != nil {
		return Memory{}, err
	}
	m := Memory{RSS: rss, HeapInuse: -1}
	body, err := p.node.HTTPGet(ctx, "http://"+metricsAddr+"/metrics")
	if err != nil {
		return m, err
	}
	for line := range strings.Lines(body) {
		if value, ok := strings.CutPrefix(strings.TrimSpace(line), heapInuseMetric+" "); ok {
			if v, err := strconv.ParseFloat(value, 64); err == nil {
				m.HeapInuse = int64(v)
			}
		}
	}
	return m, nil
}

// vmRSS reads VmRSS (kB) of a process, in bytes.
func vmRSS(pid int) (int64, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if value, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS %q of %s: %w", value, path, err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return 0, fmt.Errorf("no VmRSS in %s", path)
}
