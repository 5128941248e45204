#!/usr/bin/env bash
# The README's test command: unit tests, then the real-kernel tests in the VM.
source "$(dirname "$0")/lib.sh"
"$ROOT/hack/unit.sh"
"$ROOT/hack/integration.sh"
"$ROOT/hack/e2e.sh" test
"$ROOT/hack/test-image.sh"
"$ROOT/hack/test-deploy.sh"
