#!/usr/bin/env bash
# Runs scenario 2 (the rolling update under source-port reuse, `make demo` sizes) RUNS
# times in a row in one VM boot, for one proxier on one kernel profile, then prints each
# run's requests, failed requests (by kind), slow ones and the real servers' deletion
# times, and the total. Exit code: hack/e2e.sh's (1 when any run failed a check).
# It boots the VM: where VMs are shared, run it under `flock /tmp/ipvs-vm.lock`.
#
# Usage: hack/rolling-repeat.sh [RUNS]   (default 10)
# Environment: E2E_PROFILES (default legacy), ROLLING_PROXY (default ours-gate-on; or
#   ours-gate-off, upstream), and hack/e2e.sh's (E2E_PROXIER_V, ...).
source "$(dirname "$0")/lib.sh"
RUNS=${1:-10}
PROXY=${ROLLING_PROXY:-ours-gate-on}
export E2E_PROFILES=${E2E_PROFILES:-legacy}
flags=""
for ((i = 0; i < RUNS; i++)); do flags+=" -run rolling=$PROXY"; done
rc=0
E2E_RUN=${flags# } "$ROOT/hack/e2e.sh" demo || rc=$?

for profile in $E2E_PROFILES; do
	log=$OUT/demo/$profile/guest.log
	echo
	echo "rolling-repeat: scenario 2, $PROXY, $profile profile, $RUNS runs ($log)"
	awk '
		/^--- (PASS|FAIL) rolling\// { n++; status[n] = $2 }
		/^    requests [0-9]+, failed / {
			sub(/^    /, ""); line[n] = $0
			split($0, f, /[ ,]+/); req += f[2]; failed += f[4]; if (f[4] > 0) bad++
			if (match($0, /slower than 1 s [0-9]+/)) { s = substr($0, RSTART, RLENGTH); sub(/.* /, "", s); slow += s }
		}
		/^    real server of / { sub(/^    real server of /, ""); del[n] = del[n] (del[n] ? "; " : "") $0 }
		/^    failed requests: / {
			sub(/^    failed requests: /, ""); cut[n] = $0
			inflight += count(" in flight at a removal"); pinned += count(" begun after")
			other += count(" other"); outlasted += count(" in flight but open past")
		}
		END {
			for (i = 1; i <= n; i++) printf "run %2d %s: %s\n        deletions: %s\n        failed: %s\n", i, status[i], line[i], del[i], cut[i]
			printf "total: %d runs, %d requests, %d failed, %d ok but slower than 1 s, %d runs with failures\n", n, req, failed, slow, bad
			printf "failed requests by the deletion they met: %d in flight at a removal, %d begun after a removal on a port pinned to the removed pod, %d other, %d in flight but open past the grace\n", inflight, pinned, other, outlasted
		}
		# count is the number before what in the current line ("3 other" -> 3).
		function count(what,   m) {
			if (!match($0, "[0-9]+" what)) return 0
			m = substr($0, RSTART, RLENGTH); sub(/[^0-9].*/, "", m); return m + 0
		}' "$log"
done
exit "$rc"
