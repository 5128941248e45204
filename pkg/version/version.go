// Package version is ipvs-proxy's own version and the version of the Kubernetes
// libraries (k8s.io/kubernetes) a binary is built on. hack/lib.sh's version_ldflags
// stamps the ipvs-proxy fields with -ldflags -X at build time (hack/build.sh,
// hack/image.sh, hack/release.sh); a binary built without them (go build, go test)
// reports v0.0.0-dev and takes what the Go build information has.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set with -ldflags -X github.com/ipvs-proxy/ipvs-proxy/pkg/version.NAME=VALUE.
var (
	// gitVersion is `git describe --tags --match 'v*' --abbrev=12 --dirty` (v0.1.0, v0.1.0-3-g1a2b3c4d5e6f),
	// or v0.0.0-<short commit>[-dirty] before the first tag.
	gitVersion string
	// gitCommit is the full commit hash.
	gitCommit string
	// gitTreeState is "clean" or "dirty" (tracked files changed).
	gitTreeState string
	// buildDate is RFC 3339 in UTC.
	buildDate string
)

// kubernetesModule is the module whose release the binary's Kubernetes code comes from.
const kubernetesModule = "k8s.io/kubernetes"

// KubernetesRelease is the k8s.io/kubernetes release in vendor/modules.txt (a test keeps
// them equal): the Kubernetes version of a binary without build information for its
// dependencies (go test binaries have none).
const KubernetesRelease = "v1.37.2"

// Unstamped values.
const (
	devVersion = "v0.0.0-dev"
	unknown    = "unknown"
)

// Info describes one build of ipvs-proxy.
type Info struct {
	Version      string `json:"version"`
	GitCommit    string `json:"gitCommit"`
	GitTreeState string `json:"gitTreeState"`
	BuildDate    string `json:"buildDate"`
	// KubernetesVersion is the k8s.io/kubernetes release the binary is built on (v1.37.2).
	KubernetesVersion string `json:"kubernetesVersion"`
	GoVersion         string `json:"goVersion"`
	Compiler          string `json:"compiler"`
	Platform          string `json:"platform"`
}

// Get returns the running binary's version information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(bi)
}

// get fills Info from the stamped variables, falling back on bi (nil when the
// binary has no build information).
func get(bi *debug.BuildInfo) Info {
	info := Info{
		Version: gitVersion, GitCommit: gitCommit, GitTreeState: gitTreeState, BuildDate: buildDate,
		KubernetesVersion: kubernetesVersion(bi),
		GoVersion:         runtime.Version(), Compiler: runtime.Compiler,
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	vcs := vcsSettings(bi)
	if info.Version == "" {
		info.Version = devVersion
	}
	if info.GitCommit == "" {
		info.GitCommit = orUnknown(vcs["vcs.revision"])
	}
	if info.GitTreeState == "" {
		switch vcs["vcs.modified"] {
		case "true":
			info.GitTreeState = "dirty"
		case "false":
			info.GitTreeState = "clean"
		default:
			info.GitTreeState = unknown
		}
	}
	if info.BuildDate == "" {
		info.BuildDate = unknown
	}
	return info
}

// kubernetesVersion is the version of the k8s.io/kubernetes module linked in (its
// replacement's when replaced), else KubernetesRelease.
func kubernetesVersion(bi *debug.BuildInfo) string {
	if bi != nil {
		for _, dep := range bi.Deps {
			if dep.Path != kubernetesModule {
				continue
			}
			if dep.Replace != nil && dep.Replace.Version != "" {
				return dep.Replace.Version
			}
			if dep.Version != "" && dep.Version != "(devel)" {
				return dep.Version
			}
		}
	}
	return KubernetesRelease
}

func vcsSettings(bi *debug.BuildInfo) map[string]string {
	settings := map[string]string{}
	if bi == nil {
		return settings
	}
	for _, s := range bi.Settings {
		if strings.HasPrefix(s.Key, "vcs.") {
			settings[s.Key] = s.Value
		}
	}
	return settings
}

func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// String is one line for people and logs:
// "v0.1.0 (commit 1a2b3c4d5e6f, clean, built 2026-12-06T09:00:00Z; Kubernetes v1.37.2; go1.26.0 linux/amd64)".
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, %s, built %s; Kubernetes %s; %s %s)",
		i.Version, shortCommit(i.GitCommit), i.GitTreeState, i.BuildDate, i.KubernetesVersion, i.GoVersion, i.Platform)
}

// shortCommit is the first 12 hex digits of a commit hash.
func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
