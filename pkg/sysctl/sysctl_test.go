package sysctl

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The cases run on the Fake and on procfs over a temporary directory
// (and, in the integration test, on the real /proc/sys): a table holding
// net/ipv4/vs/conntrack = 0 at the start.
const conntrackName = "net/ipv4/vs/conntrack"

type op struct {
	set     bool // Set(name, value) when true, Get(name) otherwise
	name    string
	value   int   // value to set, or the value Get must return
	wantErr error // nil: must succeed
}

func runConformance(t *testing.T, table Interface) {
	t.Helper()
	ops := []op{
		{name: conntrackName, value: 0},
		{set: true, name: conntrackName, value: 1},
		{name: conntrackName, value: 1},
		{set: true, name: conntrackName, value: 0},
		{name: conntrackName, value: 0},
		{name: "net/ipv4/vs/no_such_parameter", wantErr: syscall.ENOENT},
		{set: true, name: "net/ipv4/vs/no_such_parameter", value: 1, wantErr: syscall.ENOENT},
		{name: "no_such_dir/parameter", wantErr: syscall.ENOENT},
		{name: "../../etc/passwd", wantErr: syscall.EINVAL},
		{name: "/proc/sys/" + conntrackName, wantErr: syscall.EINVAL},
		{name: "net/ipv4/../ipv4/vs/conntrack", wantErr: syscall.EINVAL},
		{set: true, name: "net/./ipv4/vs/conntrack", wantErr: syscall.EINVAL},
		{name: "", wantErr: syscall.EINVAL},
		{name: ".", wantErr: syscall.EINVAL},
	}
	for i, o := range ops {
		var got int
		var err error
		if o.set {
			err = table.Set(o.name, o.value)
		} else {
			got, err = table.Get(o.name)
		}
		if !errors.Is(err, o.wantErr) {
			t.Errorf("op %d %+v: error %v, want %v", i, o, err, o.wantErr)
		}
		if !o.set && err == nil && got != o.value {
			t.Errorf("op %d Get(%s) = %d, want %d", i, o.name, got, o.value)
		}
	}
}

func TestFakeConformance(t *testing.T) {
	f := NewFake(map[string]int{conntrackName: 0})
	runConformance(t, f)
	if got, want := f.Dump(), conntrackName+" = 0\n"; got != want {
		t.Errorf("Dump %q, want %q", got, want)
	}
}

func TestProcfsConformance(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, conntrackName), "0\n")
	runConformance(t, procfs{root: root})
}

func writeFile(t *testing.T, file, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestProcfsRejectsNonIntegers(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "net/ipv4/tcp_rmem"), "4096\t131072\t6291456\n")
	if v, err := (procfs{root: root}).Get("net/ipv4/tcp_rmem"); err == nil {
		t.Errorf("Get of a triple gave %d", v)
	}
}

func TestFakeInjectAndCalls(t *testing.T) {
	f := NewFake(map[string]int{conntrackName: 0})
	injected := errors.New("injected")
	var gotOp, gotObject string
	f.Inject = func(op, object string) error {
		gotOp, gotObject = op, object
		return injected
	}
	if err := f.Set(conntrackName, 1); !errors.Is(err, injected) {
		t.Errorf("Set: %v, want the injected error", err)
	}
	if gotOp != "Set" || gotObject != conntrackName {
		t.Errorf("Inject(%q, %q)", gotOp, gotObject)
	}
	if v, _ := f.Get(conntrackName); v != 0 {
		t.Errorf("injected Set changed the value to %d", v)
	}
	_, _ = f.Get("missing/name")
	if f.Calls["Set"] != 1 || f.Calls["Get"] != 2 {
		t.Errorf("Calls %v", f.Calls)
	}
}

// NewFake copies its argument: the caller's map stays the caller's.
func TestFakeCopiesInitial(t *testing.T) {
	initial := map[string]int{conntrackName: 0}
	f := NewFake(initial)
	if err := f.Set(conntrackName, 1); err != nil {
		t.Fatal(err)
	}
	if initial[conntrackName] != 0 {
		t.Error("Set wrote through to the initial map")
	}
	if _, err := NewFake(nil).Get(conntrackName); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("empty Fake: %v", err)
	}
}
