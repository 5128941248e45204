#!/usr/bin/env bash
# The README's test command: unit tests, the real-kernel tests in the VM, the
# image and manifest tests, and the e2e scenarios on the real kernel
# (hack/e2e.sh test: ours with the gate off and on, stock and legacy IPVS).
source "$(dirname "$0")/lib.sh"
START=$SECONDS
part() { step "make test: $1 ($((SECONDS - START)) s so far)"; }
part "unit tests [1/5]"
"$ROOT/hack/unit.sh"
part "real-kernel integration tests in the VM [2/5]"
"$ROOT/hack/integration.sh"
part "image [3/5]"
"$ROOT/hack/test-image.sh"
part "manifests [4/5]"
"$ROOT/hack/test-deploy.sh"
part "e2e scenarios [5/5]"
"$ROOT/hack/e2e.sh" test
step "make test: passed in $((SECONDS - START)) s"
