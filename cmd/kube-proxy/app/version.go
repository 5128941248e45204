package app

import (
	"encoding/json"
	"net/http"

	"k8s.io/component-base/metrics"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/version"
)

// buildInfoMetric is ipvsproxy_build_info: 1, labelled with what the binary was
// built from (kubernetes_build_info shows the Kubernetes libraries' release only).
const buildInfoMetric = "ipvsproxy_build_info"

// registerBuildInfo registers ipvsproxy_build_info for info with r.
func registerBuildInfo(r interface{ MustRegister(...metrics.Registerable) }, info version.Info) {
	g := metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           buildInfoMetric,
		Help:           "A metric with a constant '1' value labeled by the ipvs-proxy version, git commit, git tree state and build date, the Kubernetes release its libraries come from, the Go version and the platform.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"version", "git_commit", "git_tree_state", "build_date", "kubernetes_version", "go_version", "platform"})
	r.MustRegister(g)
	g.WithLabelValues(info.Version, info.GitCommit, info.GitTreeState, info.BuildDate, info.KubernetesVersion, info.GoVersion, info.Platform).Set(1)
}

// serveVersion answers /version with the build's version.Info as JSON.
func serveVersion(w http.ResponseWriter, _ *http.Request) {
	body, err := json.Marshal(version.Get())
	if err != nil {
		http.Error(w, "encode version: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body)
}
