package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSave serves canned save outputs keyed by "mode family args".
func fakeSave(outputs map[string]string) saveFunc {
	return func(mode Mode, family string, args ...string) []byte {
		key := strings.TrimSpace(string(mode) + " " + family + " " + strings.Join(args, " "))
		return []byte(outputs[key])
	}
}

const (
	hint       = "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n"
	canary     = "*mangle\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n"
	twoRules   = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n"
	oneRule    = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n"
	hintAsRule = "*filter\n-A INPUT -m comment --comment :KUBE-IPTABLES-HINT -j ACCEPT\nCOMMIT\n"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		outputs map[string]string
		want    Mode
	}{
		{"nothing anywhere: nft", nil, NFT},
		{"kubelet hint in nft mangle", map[string]string{"nft iptables -t mangle": hint}, NFT},
		{"kubelet canary in nft ip6 mangle", map[string]string{"nft ip6tables -t mangle": canary}, NFT},
		{"kubelet hint in legacy", map[string]string{"legacy iptables": hint, "nft iptables": twoRules}, Legacy},
		{"kubelet canary in legacy ip6", map[string]string{"legacy ip6tables": canary}, Legacy},
		{"nft hint wins over legacy hint", map[string]string{"nft iptables -t mangle": hint, "legacy iptables": hint}, NFT},
		{"more legacy rules", map[string]string{"legacy iptables": twoRules, "nft iptables": oneRule}, Legacy},
		{"more nft rules", map[string]string{"legacy iptables": oneRule, "nft ip6tables": twoRules}, NFT},
		{"tie: nft", map[string]string{"legacy iptables": oneRule, "nft iptables": oneRule}, NFT},
		{"rules in both legacy families add up", map[string]string{"legacy iptables": oneRule, "legacy ip6tables": oneRule, "nft iptables": oneRule}, Legacy},
		{"a chain name inside a rule is no marker", map[string]string{"legacy iptables": hintAsRule, "nft iptables -t mangle": hintAsRule, "nft iptables": hintAsRule}, NFT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := detect(fakeSave(tt.outputs)); got != tt.want {
				t.Errorf("detect() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLinkAllReplacesEveryName(t *testing.T) {
	dir := t.TempDir()
	for _, c := range commandNames() {
		if err := os.Symlink("iptables-wrapper", filepath.Join(dir, c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := linkAll(dir, multiBinary(Legacy)); err != nil {
		t.Fatalf("linkAll: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(commandNames()) {
		t.Errorf("directory holds %d entries, want %d (no temporary links left)", len(entries), len(commandNames()))
	}
	for _, c := range commandNames() {
		got, err := os.Readlink(filepath.Join(dir, c))
		if err != nil || got != "xtables-legacy-multi" {
			t.Errorf("%s -> %q, %v; want xtables-legacy-multi", c, got, err)
		}
	}
}

func TestLinkAllFailsInReadOnlyPlace(t *testing.T) {
	if err := linkAll(filepath.Join(t.TempDir(), "missing"), multiBinary(NFT)); err == nil {
		t.Error("linkAll into a missing directory succeeded")
	}
}
