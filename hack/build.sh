#!/usr/bin/env bash
# Builds the project's binaries (static) into _output/bin, stamped with the version
# (hack/lib.sh's version_ldflags: --version, /version, ipvsproxy_build_info).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
mkdir -p "$OUT/bin"
ldflags=$(version_ldflags)
for cmd in cmd/*/; do
	[ -f "$cmd/main.go" ] || continue
	name=$(basename "$cmd")
	step "building $name"
	go build -trimpath -ldflags "$ldflags" -o "$OUT/bin/$name" "./$cmd"
done
