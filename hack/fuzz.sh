#!/usr/bin/env bash
# Fuzz tests beyond the seeds: runs every fuzz target (func FuzzXxx in a *_test.go file) for a
# short time each. The seed corpora (<package>/testdata/fuzz/FuzzXxx/) already run in every
# `go test`; this searches for new failing inputs. A failure leaves the input in
# <package>/testdata/fuzz/FuzzXxx/<hash>, which `go test` then replays: keep it as a seed once
# the bug is fixed. The first run builds the packages with coverage instrumentation (several
# minutes on 2 cores); later runs reuse the build cache.
#
# Usage: hack/fuzz.sh [PACKAGE_DIR...]      (default: every package with fuzz targets)
# Environment:
#   FUZZ_TIME      time per target (default 20s)
#   FUZZ_PARALLEL  fuzzing workers per target (default 1)
#   FUZZ_MINIMIZE_TIME  time to shrink each new input (default 5s; Go's 60s default can eat
#                  the whole run, the progress line showing "0/sec" meanwhile)
# Ends with "fuzz: N targets, N failed"; exits 1 when a target failed.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

FUZZ_TIME=${FUZZ_TIME:-20s}
FUZZ_PARALLEL=${FUZZ_PARALLEL:-1}
FUZZ_MINIMIZE_TIME=${FUZZ_MINIMIZE_TIME:-5s}

# find_packages prints the directories whose test files define fuzz targets.
find_packages() {
	grep -rlE --include='*_test.go' '^func Fuzz[A-Z0-9_]' pkg cmd test 2>/dev/null |
		xargs -r -n1 dirname | sort -u
}

# targets prints the fuzz targets of package directory $1.
targets() {
	grep -hoE '^func Fuzz[A-Za-z0-9_]*' "$1"/*_test.go | sed 's/^func //' | sort -u
}

main() {
	local pkgs=() pkg target total=0 failed=()
	if [ $# -gt 0 ]; then pkgs=("$@"); else mapfile -t pkgs < <(find_packages); fi
	for pkg in "${pkgs[@]}"; do
		pkg=${pkg#./}
		for target in $(targets "$pkg"); do
			total=$((total + 1))
			step "fuzz: $pkg $target for $FUZZ_TIME"
			if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZ_TIME" \
				-fuzzminimizetime "$FUZZ_MINIMIZE_TIME" -parallel "$FUZZ_PARALLEL" "./$pkg"; then
				failed+=("$pkg $target")
			fi
		done
	done
	step "fuzz: summary"
	for target in "${failed[@]}"; do echo "  FAIL $target"; done
	echo "fuzz: $total targets, ${#failed[@]} failed"
	[ ${#failed[@]} -eq 0 ]
}

main "$@"
