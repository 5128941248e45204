package imagetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/hack/image/spdxcheck"
)

// sbomPath is where the builder puts each image's SPDX SBOM.
const sbomPath = "usr/share/doc/ipvs-proxy/sbom.spdx.json"

// TestImageSBOM: every platform's image holds an SPDX 2.3 SBOM, the same as the file
// beside the tarball, listing the image's Debian packages at the versions of its label
// and kube-proxy, ipvs-doctor and the iptables-wrapper with the Go modules they are built
// from (k8s.io/kubernetes among kube-proxy's).
func TestImageSBOM(t *testing.T) {
	u := open(t)
	for platform, img := range u.images {
		t.Run(platform, func(t *testing.T) {
			root := extractRootfs(t, img)
			inImage, err := os.ReadFile(filepath.Join(root, sbomPath))
			if err != nil {
				t.Fatalf("the image has no SBOM: %v", err)
			}
			beside := strings.TrimSuffix(u.tarball, ".oci.tar") + "." + strings.ReplaceAll(platform, "/", "-") + ".spdx.json"
			if data, err := os.ReadFile(beside); err != nil || string(data) != string(inImage) {
				t.Errorf("%s: %v, or it differs from the image's /%s", beside, err, sbomPath)
			}
			doc, err := spdxcheck.Check(inImage)
			if err != nil {
				t.Fatalf("SBOM: %v", err)
			}
			versions := map[string]string{}
			purls := map[string]string{}
			for _, p := range doc.Packages {
				versions[p.Name] = p.VersionInfo
				purls[p.Name] = p.Purl()
			}
			cfg := must(img.ConfigFile())
			for _, pkg := range strings.Split(cfg.Config.Labels["com.github.ipvs-proxy.debian-packages"], ",") {
				name, version, _ := strings.Cut(pkg, "=")
				if versions[name] != version || !strings.HasPrefix(purls[name], "pkg:deb/debian/"+name+"@") {
					t.Errorf("SBOM has Debian package %s at %q (purl %q), the image's label says %s", name, versions[name], purls[name], version)
				}
			}
			wantVersion := cfg.Config.Labels["org.opencontainers.image.version"]
			for _, program := range []string{"kube-proxy", "ipvs-doctor"} {
				if versions[program] != wantVersion {
					t.Errorf("SBOM: %s at %q, want the image's version %q", program, versions[program], wantVersion)
				}
			}
			if _, ok := versions["iptables-wrapper"]; !ok {
				t.Error("SBOM lacks the iptables-wrapper")
			}
			if !strings.HasPrefix(purls["k8s.io/kubernetes"], "pkg:golang/k8s.io/kubernetes@v1.") || versions["stdlib"] == "" {
				t.Errorf("SBOM: k8s.io/kubernetes purl %q, stdlib %q; want the Go modules of the binaries", purls["k8s.io/kubernetes"], versions["stdlib"])
			}
		})
	}
}
