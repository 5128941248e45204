#!/usr/bin/env bash
# Real-kernel tests. Compiles every package that has *_integration_test.go files (build tag
# integration) into a static test binary, runs them all as root in the test VM (hack/vm/run.sh:
# Debian's kernel under qemu with IPVS, iptables, ipset and conntrack), streams their -test.v
# output, and ends with the line "integration: N passed, N failed" (top-level tests; a binary
# that fails without a failed test, e.g. a panic or timeout, counts as one failed test).
# Exits 1 when anything failed or the VM did not finish.
#
# Usage: hack/integration.sh [PACKAGE_DIR...]      (default: every package with such files)
# Environment:
#   INTEGRATION_RUN           -test.run regexp passed to every binary
#   INTEGRATION_ARGS          more flags for every binary (e.g. -test.count=2)
#   INTEGRATION_TEST_TIMEOUT  -test.timeout of each binary (default 10m: pkg/proxy/ipvs took 221 s
#                             in a VM on a host at load 10, over 300 s at load 15)
#   INTEGRATION_VM_TIMEOUT    seconds before the VM is killed (default: from the binaries' timeouts)
#   VM_CPUS, VM_MEMORY_MB     passed on to hack/vm/run.sh
source "$(dirname "$0")/lib.sh"
source "$ROOT/hack/vm/lib.sh"
cd "$ROOT"

TEST_TIMEOUT=${INTEGRATION_TEST_TIMEOUT:-10m}
COMPILE_FAILED=()

# find_packages prints the directories holding *_integration_test.go files, skipping the
# directories go's ./... skips (vendor, testdata, names starting with _ or .).
find_packages() {
	local roots=() d
	for d in pkg test cmd internal; do [ -d "$d" ] && roots+=("$d"); done
	[ ${#roots[@]} -gt 0 ] || return 0
	find "${roots[@]}" \( -name vendor -o -name testdata -o -name '[._]*' \) -prune -o \
		-name '*_integration_test.go' -printf '%h\n' | sort -u
}

# compile builds one package's test binary into $TESTS/<name>/ and adds it to $TESTS/index.
compile() {
	local dir=${1#./} name
	dir=${dir%/}
	name=${dir//\//_}
	mkdir -p "$TESTS/$name"
	if ! go test -c -vet=off -tags integration -ldflags='-s -w' -o "$TESTS/$name/$name.test" "./$dir"; then
		COMPILE_FAILED+=("$dir")
		return
	fi
	[ -f "$TESTS/$name/$name.test" ] || { echo "integration: $dir has no tests"; return; }
	[ ! -d "$dir/testdata" ] || cp -a "$dir/testdata" "$TESTS/$name/"
	echo "$dir $name $name.test" >>"$TESTS/index"
}

# seconds converts a Go duration made of one number and s, m or h into seconds (600 otherwise).
seconds() {
	case $1 in
	*[!0-9smh]* | *[smh]*[smh]*) echo 600 ;;
	*h) echo $((${1%h} * 3600)) ;;
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}

# show_progress passes the guest's output through and turns the runner's markers into headers.
show_progress() {
	awk -W interactive -v mark="$VM_MARK" -v total="$1" '
	function at(s) { return index($0, mark " " s " ") }
	function before(i) { if (i > 1) print substr($0, 1, i - 1) }
	at("BEGIN") {
		i = at("BEGIN"); before(i); n++
		printf "\n==> [%s] test binary %d/%d: %s\n", strftime("%H:%M:%S"), n, total, substr($0, i + length(mark) + 7)
		fflush(); next
	}
	at("END") {
		i = at("END"); before(i); split(substr($0, i + length(mark) + 5), f, " ")
		printf "<== %s: %s (%s, %s)\n", f[1], (f[2] == "rc=0" ? "ok" : "FAILED"), f[2], f[3]
		fflush(); next
	}
	{ print; fflush() }'
}

# summarize counts top-level tests in the guest log and prints the failures and the summary line.
summarize() {
	local log=$1 vm_rc=$2
	awk -v mark="$VM_MARK" -v vm_rc="$vm_rc" -v index_file="$TESTS/index" -v compile_failed="${COMPILE_FAILED[*]}" '
	function at(s) { return index($0, mark " " s " ") }
	function fail(what) { failed++; failures = failures "\n  FAIL " what }
	at("BEGIN") { cur = substr($0, at("BEGIN") + length(mark) + 7); ran[cur] = 1; bin_failed = 0; next }
	at("END") {
		split(substr($0, at("END") + length(mark) + 5), f, " ")
		if (f[2] != "rc=0" && bin_failed == 0) fail(cur " (binary " f[2] " without a failed test: panic, timeout or TestMain)")
		cur = ""; next
	}
	/^--- PASS: / { passed++ }
	/^--- SKIP: / { skipped++ }
	/^--- FAIL: / { bin_failed++; fail(cur " " $3) }
	END {
		if (cur != "") fail(cur " (did not finish: the VM stopped, exit " vm_rc ")")
		while ((getline line < index_file) > 0) { split(line, p, " "); if (!(p[1] in ran)) fail(p[1] " (not run)") }
		n = split(compile_failed, c, " "); for (i = 1; i <= n; i++) fail(c[i] " (does not compile)")
		if (failures != "") print "\nfailures:" failures
		if (vm_rc == 124 || vm_rc == 125) { print "integration: the VM did not finish (hack/vm/run.sh exit " vm_rc ")"; vm_dead = 1 }
		if (skipped > 0) print "integration: " skipped + 0 " skipped"
		print "integration: " passed + 0 " passed, " failed + 0 " failed"
		exit (failed > 0 || vm_dead)
	}' "$log"
}

# compile_all compiles the packages' test binaries into $TESTS and lists them in $TESTS/index.
compile_all() {
	local pkg n=0
	mkdir -p "$TESTS"
	: >"$TESTS/index"
	for pkg in "$@"; do
		n=$((n + 1))
		step "integration: compiling $pkg ($n/$#)"
		compile "$pkg"
	done
}

# run_in_vm packs the binaries, runs them in the VM and prints the summary.
run_in_vm() {
	local n=$1 vm_rc=0 vm_timeout
	step "integration: packing $n test binaries ($(du -sm "$TESTS" | cut -f1) MiB)"
	(cd "$WORK/stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$WORK/tests.cpio"
	LOG_DIR="$VM_OUT/logs/integration-$(date +%Y%m%d-%H%M%S)-$$"
	ls -1dt "$VM_OUT"/logs/integration-* 2>/dev/null | tail -n +10 | xargs -r rm -rf || true
	vm_timeout=${INTEGRATION_VM_TIMEOUT:-$((120 + n * ($(seconds "$TEST_TIMEOUT") + 30)))}
	step "integration: running $n test binaries in the VM (logs: ${LOG_DIR#"$ROOT"/})"
	"$VM_DIR/run.sh" --extra-cpio "$WORK/tests.cpio" --log-dir "$LOG_DIR" --timeout "$vm_timeout" \
		--env "VM_TEST_TIMEOUT=$TEST_TIMEOUT" --env "VM_TEST_RUN=${INTEGRATION_RUN:-}" \
		--env "VM_TEST_ARGS=${INTEGRATION_ARGS:-}" -- vm-run-tests /tests |
		show_progress "$n" || vm_rc=${PIPESTATUS[0]}
	step "integration: summary"
	summarize "$LOG_DIR/guest.log" "$vm_rc"
}

main() {
	local pkgs=() n
	export VM_MARK="@@itest-$(head -c6 /dev/urandom | od -An -tx1 | tr -d ' \n')@@"
	step "integration: checking host packages"
	"$ROOT/hack/install-deps.sh"
	step "integration: VM base image"
	"$VM_DIR/build-base.sh" >/dev/null
	if [ $# -gt 0 ]; then pkgs=("$@"); else mapfile -t pkgs < <(find_packages); fi
	WORK=$(mktemp -d "$VM_OUT/integration.XXXXXX")
	trap 'rm -rf "$WORK"' EXIT
	TESTS="$WORK/stage/tests"
	compile_all "${pkgs[@]}"
	n=$(wc -l <"$TESTS/index")
	if [ "$n" -eq 0 ]; then
		step "integration: summary (nothing to run)"
		summarize /dev/null 0
		return
	fi
	run_in_vm "$n"
}

main "$@"
