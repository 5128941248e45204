package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Adversarial review 10: each test below names whether it failed before its fix.

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A directory with both junit_x.xml and keep.sh's junit_x.xml.gz of it (a kept run copied
// back into _output, or keep.sh's output beside the run): one pass, read once; its time
// counted twice made the run look twice as long. Failed before the fix (Seconds 20, want 10).
func TestPlainAndGzippedTwinReadOnce(t *testing.T) {
	dir := writeRun(t, []string{basic}, map[string]string{"junit_01.xml": passed("[It] " + basic)})
	plain, err := os.ReadFile(filepath.Join(dir, "junit_01.xml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "junit_01.xml.gz"), string(gzipped(t, plain)))
	r := mustReadRun(t, "x", dir)
	if r.Seconds != 10 || len(r.Files) != 1 || len(r.Problems) != 0 {
		t.Errorf("Seconds = %v, Files = %q, Problems = %q: want 10 s from one file", r.Seconds, r.Files, r.Problems)
	}
}

// A gzipped JUnit file cut short (a copy interrupted), or whole but not XML: a Problem naming
// the file, its tests not run. Held before the review.
func TestBadGzippedJUnitIsAProblem(t *testing.T) {
	whole := gzipped(t, []byte(junitXML(passed("[It] "+basic))))
	for name, data := range map[string][]byte{
		"truncated": whole[:len(whole)-6],
		"not XML":   gzipped(t, []byte("conformance: gate-off took 3134 s\n")),
		"empty":     gzipped(t, nil),
	} {
		dir := writeRun(t, []string{basic}, nil)
		writeFile(t, filepath.Join(dir, "junit_01.xml.gz"), string(data))
		r := mustReadRun(t, "x", dir)
		if r.Outcome(basic) == Passed || len(Problems([]*Run{r})) == 0 ||
			!strings.Contains(strings.Join(r.Problems, " "), "junit_01.xml.gz") {
			t.Errorf("%s: outcome %s, problems %q: want a problem naming junit_01.xml.gz", name, r.Outcome(basic), r.Problems)
		}
	}
}

// keep.sh in a copy of hack/ (its lib.sh chain) with a made-up run.
func keepSh(t *testing.T, run string, setup func(root string)) (string, string, error) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	root := t.TempDir()
	for _, f := range []string{"hack/lib.sh", "hack/controlplane/lib.sh", "hack/cluster/lib.sh", "hack/conformance/lib.sh", "hack/conformance/keep.sh"} {
		data, err := os.ReadFile(filepath.Join("../../../..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, f), string(data))
	}
	if err := os.MkdirAll(filepath.Join(root, "test/conformance/results/upstream"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "test/conformance/results/upstream/about.txt"), "kept earlier\n")
	setup(root)
	cmd := exec.Command(bash, filepath.Join(root, "hack/conformance/keep.sh"), run)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	return root, string(out), err
}

// keep.sh RUN with an empty name, "..", or a path: RUN is a directory name under
// test/conformance/results. keep.sh "" removed test/conformance/results whole (every kept
// run) when _output/conformance held a junit file; "x/.." the same. Failed before the fix.
func TestKeepShRejectsRunThatIsNotAName(t *testing.T) {
	for _, run := range []string{"", ".", "..", "x/..", "a/b", "../results"} {
		root, out, err := keepSh(t, run, func(root string) {
			for _, d := range []string{"_output/conformance", "_output/conformance/x", "_output/conformance/a/b", "_output"} {
				os.MkdirAll(filepath.Join(root, d), 0o755)
				writeFile(t, filepath.Join(root, d, "junit_01.xml"), junitXML(passed("[It] "+basic)))
				writeFile(t, filepath.Join(root, d, "selected.txt"), basic+"\n")
			}
		})
		if err == nil {
			t.Errorf("keep.sh %q: exit 0, want a usage error:\n%s", run, out)
		}
		if _, err := os.Stat(filepath.Join(root, "test/conformance/results/upstream/about.txt")); err != nil {
			t.Errorf("keep.sh %q removed another kept run: %v", run, err)
		}
	}
}

// about.txt's day is the run's (its JUnit's suite timestamp), not the file's mtime: a run
// directory copied (cp without -p, a restore) got the copy's day. Failed before the fix.
func TestKeepShDayIsTheRunsNotTheFilesMtime(t *testing.T) {
	root, out, err := keepSh(t, "gate-off", func(root string) {
		d := filepath.Join(root, "_output/conformance/gate-off")
		os.MkdirAll(d, 0o755)
		writeFile(t, filepath.Join(d, "junit_parallel_01.xml"), `<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="Kubernetes e2e suite" time="10" timestamp="2026-12-06T23:50:00">`+passed("[It] "+basic)+`</testsuite></testsuites>`)
		writeFile(t, filepath.Join(d, "selected.txt"), basic+"\n")
		writeFile(t, filepath.Join(d, "commit.txt"), "abc1234\n")
	})
	if err != nil {
		t.Fatalf("keep.sh: %v\n%s", err, out)
	}
	about, err := os.ReadFile(filepath.Join(root, "test/conformance/results/gate-off/about.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "commit abc1234, 2026-12-06\n"; string(about) != want {
		t.Errorf("about.txt = %q, want %q", about, want)
	}
}

// run.sh run by hand (as the four fallback tests were) into a RUN directory an earlier make
// conformance had used kept that run's duration.txt and kube-proxy.txt, and keep.sh then kept
// them as this run's: another run's time, and another addon's image and gate. run.sh removes
// both, except kube-proxy.txt when conformance.sh has just written it (CONF_KUBE_PROXY_CHECKED).
// Failed before the fix.
func TestRunShDropsAnEarlierRunsDurationAndKubeProxy(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, checked := range []bool{false, true} {
		root := t.TempDir()
		for _, f := range []string{"hack/lib.sh", "hack/controlplane/lib.sh", "hack/cluster/lib.sh", "hack/conformance/lib.sh", "hack/conformance/run.sh"} {
			data, err := os.ReadFile(filepath.Join("../../../..", f))
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755)
			writeFile(t, filepath.Join(root, f), string(data))
		}
		// The build fails: run.sh stops right after clearing the earlier run's files.
		writeFile(t, filepath.Join(root, "hack/conformance/build.sh"), "#!/bin/sh\nexit 3\n")
		os.Chmod(filepath.Join(root, "hack/conformance/build.sh"), 0o755)
		dir := filepath.Join(root, "_output/conformance/gate-on")
		os.MkdirAll(dir, 0o755)
		writeFile(t, filepath.Join(dir, "duration.txt"), "conformance: gate-on took 6420 s\n")
		writeFile(t, filepath.Join(dir, "kube-proxy.txt"), "image ipvs-proxy/kube-proxy:dev, IPVSImmediateTermination on\n")
		writeFile(t, filepath.Join(root, "kubeconfig"), "")
		cmd := exec.Command(bash, filepath.Join(root, "hack/conformance/run.sh"), filepath.Join(root, "kubeconfig"), "gate-on")
		cmd.Env = os.Environ()
		if checked {
			cmd.Env = append(cmd.Env, "CONF_KUBE_PROXY_CHECKED=1")
		}
		out, _ := cmd.CombinedOutput()
		if _, err := os.Stat(filepath.Join(dir, "duration.txt")); err == nil {
			t.Errorf("checked=%v: the earlier run's duration.txt is still there\n%s", checked, out)
		}
		_, err = os.Stat(filepath.Join(dir, "kube-proxy.txt"))
		if checked != (err == nil) {
			t.Errorf("checked=%v: kube-proxy.txt there = %v, want %v\n%s", checked, err == nil, checked, out)
		}
	}
}

// about.txt's NOTE is free text (keep.sh RUN NOTE): a "<" in it is escaped as the test names
// are, or rendered Markdown takes "<kernel 6.1>" for an HTML tag and hides it. Held before the review (oneLine escapes).
func TestAboutIsEscaped(t *testing.T) {
	dir := writeRun(t, []string{basic}, map[string]string{"junit_01.xml": passed("[It] " + basic)})
	writeFile(t, filepath.Join(dir, "about.txt"), "commit abc1234, 2026-12-07\nnodes on <kernel 6.1> | TCG\n")
	md := report(t, mustReadRun(t, "gate-off", dir))
	if want := `- gate-off: commit abc1234, 2026-12-07 nodes on \<kernel 6.1> \| TCG` + "\n"; !strings.Contains(md, want) {
		t.Errorf("report lacks %q:\n%s", want, md)
	}
}
