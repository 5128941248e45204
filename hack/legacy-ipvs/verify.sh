#!/usr/bin/env bash
# Shows in the test VM that the legacy modules behave as kernels before 5.9 and the stock
# ones do not: reuse-check.sh under the stock modules must print "RESULT stock", under the
# modules of build.sh "RESULT legacy". Needs hack/vm/run.sh (qemu, about a minute each).
source "$(dirname "$0")/../lib.sh"
LEGACY_DIR="$ROOT/hack/legacy-ipvs"
"$LEGACY_DIR/build.sh"
source "$ROOT/hack/vm/lib.sh"
kver=$(vm_kernel_version)
cpio="$OUT/legacy-ipvs/$kver/modules.cpio"
[ -f "$cpio" ] || { echo "legacy-ipvs: no $cpio: the VM boots $kver, build.sh built another kernel" >&2; exit 1; }

step "building reuse-client"
mkdir -p "$OUT/legacy-ipvs/bin"
go build -o "$OUT/legacy-ipvs/bin/reuse-client" "$LEGACY_DIR/reuse-client.go"

# check NAME WANT [run.sh options]: runs reuse-check.sh in the VM and expects "RESULT WANT".
check() {
	local name=$1 want=$2 out
	shift 2
	step "reuse check with the $name modules (want: $want)"
	out=$("$ROOT/hack/vm/run.sh" --timeout 300 --dir "$LEGACY_DIR:/legacy" \
		--dir "$OUT/legacy-ipvs/bin:/legacy-bin" "$@" -- sh /legacy/reuse-check.sh 2>&1) || true
	echo "$out" | grep -E '^(weight0-reuse|deleted-|CHECK|PROBE|probe|entries)' || true
	echo "$out" | tail -n 12
	echo "$out" | grep -q "^RESULT $want" ||
		{ echo "legacy-ipvs: $name modules did not behave as $want" >&2; return 1; }
}

check stock stock
check legacy legacy --extra-cpio "$cpio"
step "legacy modules verified"
