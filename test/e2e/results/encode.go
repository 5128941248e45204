package results

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DataPrefix starts the lines that carry runs from the VM to the host in the guest's
// output: "<prefix> <id> <part>/<parts> <base64 of gzipped JSON>".
const DataPrefix = "e2e-data"

const chunkSize = 3000

// EncodeLines turns a run into data lines; id tells runs apart in one log.
func EncodeLines(run *Run, id int) ([]string, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(run); err != nil {
		return nil, fmt.Errorf("encode run %s: %w", run.Key(), err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress run %s: %w", run.Key(), err)
	}
	text := base64.StdEncoding.EncodeToString(buf.Bytes())
	parts := (len(text) + chunkSize - 1) / chunkSize
	lines := make([]string, 0, parts)
	for i := range parts {
		chunk := text[i*chunkSize : min(len(text), (i+1)*chunkSize)]
		lines = append(lines, fmt.Sprintf("%s %d %d/%d %s", DataPrefix, id, i+1, parts, chunk))
	}
	return lines, nil
}

// DecodeLog reads every run carried by data lines in a log (other lines are ignored;
// a data line may follow other text on the same line).
func DecodeLog(r io.Reader) ([]*Run, error) {
	chunks := map[int][]string{}
	var order []int
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, DataPrefix+" ")
		if i < 0 {
			continue
		}
		id, part, parts, data, err := parseDataLine(line[i:])
		if err != nil {
			return nil, err
		}
		if _, seen := chunks[id]; !seen {
			order = append(order, id)
			chunks[id] = make([]string, parts)
		}
		if part < 1 || part > len(chunks[id]) {
			return nil, fmt.Errorf("data line for run %d: part %d of %d", id, part, len(chunks[id]))
		}
		chunks[id][part-1] = data
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	runs := make([]*Run, 0, len(order))
	for _, id := range order {
		run, err := decodeRun(id, chunks[id])
		if err != nil {
			return nil, err
		}
		runs = append(runs, run)
	}
	return runs, nil
}

func parseDataLine(line string) (id, part, parts int, data string, err error) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return 0, 0, 0, "", fmt.Errorf("malformed data line %.60q", line)
	}
	id, err1 := strconv.Atoi(f[1])
	p, ps, ok := strings.Cut(f[2], "/")
	part, err2 := strconv.Atoi(p)
	parts, err3 := strconv.Atoi(ps)
	if err1 != nil || err2 != nil || err3 != nil || !ok || parts < 1 {
		return 0, 0, 0, "", fmt.Errorf("malformed data line header %.60q", line)
	}
	return id, part, parts, f[3], nil
}

func decodeRun(id int, chunks []string) (*Run, error) {
	for i, c := range chunks {
		if c == "" {
			return nil, fmt.Errorf("run %d: part %d of %d missing", id, i+1, len(chunks))
		}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(chunks, ""))
	if err != nil {
		return nil, fmt.Errorf("run %d: decode base64: %w", id, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("run %d: gunzip: %w", id, err)
	}
	var run Run
	if err := json.NewDecoder(zr).Decode(&run); err != nil {
		return nil, fmt.Errorf("run %d: decode JSON: %w", id, err)
	}
	return &run, nil
}
