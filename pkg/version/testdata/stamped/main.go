// Command stamped prints what a binary built with hack/lib.sh's version_ldflags reports:
// pkg/version, k8s.io/component-base/version and k8s.io/client-go/pkg/version, as JSON.
package main

import (
	"encoding/json"
	"os"

	clientgoversion "k8s.io/client-go/pkg/version"
	k8sversion "k8s.io/component-base/version"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/version"
)

func main() {
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"ipvsProxy": version.Get(), "componentBase": k8sversion.Get(), "clientGo": clientgoversion.Get(),
	})
}
