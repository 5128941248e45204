package version

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	apimachineryversion "k8s.io/apimachinery/pkg/version"
)

// vendoredKubernetes is the k8s.io/kubernetes release in vendor/modules.txt.
func vendoredKubernetes(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../vendor/modules.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == kubernetesModule {
			return f[2]
		}
	}
	t.Fatal("vendor/modules.txt lists no k8s.io/kubernetes")
	return ""
}

func TestUnstamped(t *testing.T) {
	got := get(nil)
	want := Info{Version: devVersion, GitCommit: unknown, GitTreeState: unknown, BuildDate: unknown,
		KubernetesVersion: KubernetesRelease, GoVersion: runtime.Version(), Compiler: runtime.Compiler, Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if got != want {
		t.Errorf("get(nil) = %+v, want %+v", got, want)
	}
}

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		Deps: []*debug.Module{{Path: "k8s.io/api", Version: "v0.37.2"}, {Path: kubernetesModule, Version: "v1.37.2"}},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	got := get(bi)
	if got.Version != devVersion || got.GitCommit != "0123456789abcdef0123456789abcdef01234567" ||
		got.GitTreeState != "dirty" || got.KubernetesVersion != "v1.37.2" || got.BuildDate != unknown {
		t.Errorf("get(build info) = %+v", got)
	}
	bi.Deps[1].Replace = &debug.Module{Path: kubernetesModule, Version: "v1.37.3"}
	if got := get(bi).KubernetesVersion; got != "v1.37.3" {
		t.Errorf("replaced k8s.io/kubernetes: KubernetesVersion = %q, want the replacement's v1.37.3", got)
	}
}

func TestStampedWins(t *testing.T) {
	defer func(v, c, s, d string) { gitVersion, gitCommit, gitTreeState, buildDate = v, c, s, d }(gitVersion, gitCommit, gitTreeState, buildDate)
	gitVersion, gitCommit, gitTreeState, buildDate = "v0.2.0", "fedcba", "clean", "2026-12-06T10:00:00Z"
	bi := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123"}, {Key: "vcs.modified", Value: "true"}}}
	got := get(bi)
	if got.Version != "v0.2.0" || got.GitCommit != "fedcba" || got.GitTreeState != "clean" || got.BuildDate != "2026-12-06T10:00:00Z" {
		t.Errorf("stamped: %+v", got)
	}
	if s := got.String(); !strings.HasPrefix(s, "v0.2.0 (commit fedcba, clean, built 2026-12-06T10:00:00Z; Kubernetes ") {
		t.Errorf("String() = %q", s)
	}
}

func TestKubernetesReleaseIsVendored(t *testing.T) {
	if want := vendoredKubernetes(t); KubernetesRelease != want {
		t.Errorf("KubernetesRelease = %s, but vendor/modules.txt has k8s.io/kubernetes %s: update it", KubernetesRelease, want)
	}
}

// TestVersionLdflags builds testdata/stamped with hack/lib.sh's version_ldflags and checks
// that every field arrives: a -X naming a variable that does not exist is silently ignored.
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	env := append(os.Environ(), "IPVS_PROXY_VERSION=v0.9.1-2-gabcdef1", "GIT_COMMIT=abcdef1234567890",
		"GIT_TREE_STATE=clean", "BUILD_DATE=2026-12-06T10:11:12Z")
	script := exec.Command("bash", "-c", `source hack/lib.sh && version_ldflags`)
	script.Dir, script.Env = "../..", env
	ldflags, err := script.Output()
	if err != nil {
		t.Fatalf("version_ldflags: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "stamped")
	build := exec.Command("go", "build", "-mod=vendor", "-ldflags", strings.TrimSpace(string(ldflags)), "-o", bin, "./testdata/stamped")
	build.Env = env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		IPVSProxy     Info                     `json:"ipvsProxy"`
		ComponentBase apimachineryversion.Info `json:"componentBase"`
		ClientGo      apimachineryversion.Info `json:"clientGo"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	kube := vendoredKubernetes(t)
	if ours := got.IPVSProxy; ours.Version != "v0.9.1-2-gabcdef1" || ours.GitCommit != "abcdef1234567890" ||
		ours.GitTreeState != "clean" || ours.BuildDate != "2026-12-06T10:11:12Z" || ours.KubernetesVersion != kube {
		t.Errorf("pkg/version = %+v", ours)
	}
	minor := strings.Split(kube, ".")[1]
	for name, info := range map[string]apimachineryversion.Info{"k8s.io/component-base/version": got.ComponentBase, "k8s.io/client-go/pkg/version": got.ClientGo} {
		if info.GitVersion != kube || info.Major != "1" || info.Minor != minor || info.GitTreeState != "clean" ||
			info.GitCommit != "" || info.BuildDate != "2026-12-06T10:11:12Z" {
			t.Errorf("%s = %#v, want %s", name, info, kube)
		}
	}
}
