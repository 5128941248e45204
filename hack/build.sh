#!/usr/bin/env bash
# Builds the project's binaries (static) into _output/bin.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
mkdir -p "$OUT/bin"
for cmd in cmd/*/; do
	[ -f "$cmd/main.go" ] || continue
	name=$(basename "$cmd")
	step "building $name"
	go build -trimpath -o "$OUT/bin/$name" "./$cmd"
done
