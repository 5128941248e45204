// Command kube-proxy is a drop-in kube-proxy for IPVS mode.
package main

import (
	"os"

	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, like upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // kubernetes_build_info

	"github.com/ipvs-proxy/ipvs-proxy/cmd/kube-proxy/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
