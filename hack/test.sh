#!/usr/bin/env bash
# The README's test command: unit tests, the real-kernel tests in the VM, the
# image and manifest tests. The e2e scenarios run with `make e2e` (see README):
# their zero-failure check under the immediate policy still fails now and then
# (a request in flight when the endpoint is removed is reset; open issue).
source "$(dirname "$0")/lib.sh"
"$ROOT/hack/unit.sh"
"$ROOT/hack/integration.sh"
"$ROOT/hack/test-image.sh"
"$ROOT/hack/test-deploy.sh"
