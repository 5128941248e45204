#!/usr/bin/env bash
# Boots the test VM (Debian's kernel under qemu TCG, the cached base initramfs) and runs one
# shell command in it as root, streaming its output; exits with the command's exit code.
# See hack/vm/README.md.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/hack/vm/lib.sh"

usage() {
	cat >&2 <<'EOF'
usage: hack/vm/run.sh [options] -- COMMAND...
  --extra-cpio FILE   append a newc cpio archive to the initramfs (repeatable; files land at
                      their archive paths and replace base files, e.g. .ko files, before boot)
  --dir DIR[:GUEST]   copy a host directory into the guest at GUEST (default /extra) (repeatable)
  --env NAME=VALUE    export a variable to COMMAND (repeatable)
  --qemu ARGS         more qemu arguments, split on spaces (repeatable), e.g. a network:
                      '-netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0'
  --timeout SECS      kill the VM after SECS seconds (default $VM_TIMEOUT or 600)
  --log-dir DIR       keep console.log (kernel, ttyS0) and guest.log (COMMAND output) in DIR
COMMAND's words are joined with spaces and run by the guest's sh (like ssh).
Environment: VM_CPUS (2), VM_MEMORY_MB (2048), VM_ACCEL (tcg), VM_KERNEL_VERSION, VM_MARK.
Exit code: COMMAND's, or 124 when the VM timed out, 125 when it stopped without an exit code.
EOF
	exit 2
}

EXTRA_CPIOS=() DIRS=() ENVS=() QEMU_ARGS=()
TIMEOUT=${VM_TIMEOUT:-600}
LOG_DIR=""
parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		--extra-cpio) EXTRA_CPIOS+=("$(realpath "$2")"); shift 2 ;;
		--dir) DIRS+=("$2"); shift 2 ;;
		--env) ENVS+=("$2"); shift 2 ;;
		--qemu) read -ra words <<<"$2"; QEMU_ARGS+=("${words[@]}"); shift 2 ;;
		--timeout) TIMEOUT=$2; shift 2 ;;
		--log-dir) LOG_DIR=$2; shift 2 ;;
		--) shift; break ;;
		*) usage ;;
		esac
	done
	[ $# -gt 0 ] || usage
	COMMAND="$*"
}

# write_job stages /vm/job/{cmd,env} and the --dir copies, and packs them as job.cpio.
write_job() {
	local stage="$RUN_DIR/job" spec src dst e
	mkdir -p "$stage/vm/job"
	printf '. /etc/vm/profile\n%s\n' "$COMMAND" >"$stage/vm/job/cmd"
	{
		echo "export VM_MARK=$(vm_quote "$VM_MARK")"
		for e in "${ENVS[@]}"; do echo "export ${e%%=*}=$(vm_quote "${e#*=}")"; done
	} >"$stage/vm/job/env"
	for spec in "${DIRS[@]}"; do
		src=${spec%%:*} dst=/extra
		[ "$spec" = "$src" ] || dst=${spec#*:}
		mkdir -p "$stage$dst"
		cp -a "$src/." "$stage$dst/"
	done
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$RUN_DIR/job.cpio"
	rm -rf "$stage"
}

# boot runs qemu: the kernel console goes to console.log, the job's output (ttyS1) to stdout
# and guest.log. qemu's stdin is /dev/null so it never puts a terminal in raw mode.
boot() {
	local kver=$1 initrd=$2
	# no_timer_check: on a busy host, TCG is too slow for the kernel's IO-APIC timer check,
	# which then panics ("IO-APIC + timer doesn't work!", setup_IO_APIC).
	local cmdline="console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off no_timer_check rdinit=/init"
	timeout -k 5 "$TIMEOUT" qemu-system-x86_64 \
		-nodefaults -no-user-config -display none -no-reboot \
		-accel "${VM_ACCEL:-tcg}" -cpu max -smp "${VM_CPUS:-2}" -m "${VM_MEMORY_MB:-2048}" \
		-kernel "/boot/vmlinuz-$kver" -initrd "$initrd" -append "$cmdline" \
		-serial "file:$LOG_DIR/console.log" -serial stdio \
		"${QEMU_ARGS[@]}" </dev/null 2>"$LOG_DIR/qemu.err" |
		sed -u -e 's/\r$//' | tee "$LOG_DIR/guest.log" | sed -u -e "/${VM_MARK} EXIT [0-9]*\$/d"
	return "${PIPESTATUS[0]}"
}

# report_unfinished explains a VM that ended without printing the job's exit code.
report_unfinished() {
	local qemu_rc=$1
	if [ "$qemu_rc" -eq 124 ]; then
		echo "vm: TIMEOUT: the VM did not finish within ${TIMEOUT}s" >&2
	else
		echo "vm: the VM stopped without reporting an exit code (qemu exit $qemu_rc)" >&2
	fi
	cat "$LOG_DIR/qemu.err" >&2
	echo "vm: last kernel console lines ($LOG_DIR/console.log):" >&2
	tail -n 30 "$LOG_DIR/console.log" >&2
}

# prune_logs keeps the newest 20 default log directories.
prune_logs() {
	mkdir -p "$VM_OUT/logs"
	ls -1dt "$VM_OUT"/logs/run-* 2>/dev/null | tail -n +20 | xargs -r rm -rf || true
}

main() {
	parse_args "$@"
	local kver base qemu_rc=0 rc
	kver=$(vm_kernel_version)
	base=$("$VM_DIR/build-base.sh")
	VM_MARK=${VM_MARK:-@@vm-$(head -c6 /dev/urandom | od -An -tx1 | tr -d ' \n')@@}
	RUN_DIR=$(mktemp -d "$VM_OUT/run.XXXXXX")
	trap 'rm -rf "$RUN_DIR"' EXIT
	if [ -z "$LOG_DIR" ]; then
		LOG_DIR="$VM_OUT/logs/run-$(date +%Y%m%d-%H%M%S)-$$"
		prune_logs
	fi
	mkdir -p "$LOG_DIR"
	write_job
	cat "$base" "${EXTRA_CPIOS[@]}" "$RUN_DIR/job.cpio" >"$RUN_DIR/initrd.cpio"
	echo "vm: booting kernel $kver (${VM_ACCEL:-tcg}, ${VM_CPUS:-2} CPUs, ${VM_MEMORY_MB:-2048} MiB," \
		"initramfs $(du -m "$RUN_DIR/initrd.cpio" | cut -f1) MiB, timeout ${TIMEOUT}s)" >&2
	boot "$kver" "$RUN_DIR/initrd.cpio" || qemu_rc=$?
	rc=$(sed -n "s/.*${VM_MARK} EXIT \([0-9]*\)\$/\1/p" "$LOG_DIR/guest.log" | tail -n1)
	if [ -z "$rc" ]; then
		report_unfinished "$qemu_rc"
		[ "$qemu_rc" -eq 124 ] && exit 124
		exit 125
	fi
	exit "$rc"
}

main "$@"
