#!/usr/bin/env bash
# `make demo`: the rolling-update demonstration on a fresh machine. Installs what it needs,
# builds, boots the test VM under the stock and the legacy kernel profile and runs, against
# a real API server, upstream kube-proxy v1.37.2 and ipvs-proxy (IPVSImmediateTermination
# off and on) through the same rolling update under source-port reuse, plus the in-flight
# connection scenario. Prints the side-by-side tables; the report (report.md with the
# failures-over-time plot failures.svg, and results.json) goes to _output/demo/.
source "$(dirname "$0")/lib.sh"
exec "$ROOT/hack/e2e.sh" demo
