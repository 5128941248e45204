#!/usr/bin/env bash
# hack/conformance/keep.sh RUN [NOTE]: keeps a finished run's results in the repository, under
# test/conformance/results/RUN/, so that the three-run report can be made in another session or
# on another machine (_output/ is not kept, and a run takes 1.5 h of the machine alone): its
# JUnit files gzipped, selected.txt, duration.txt, kube-proxy.txt, and about.txt (the commit
# that ran, from run.sh's commit.txt; the day the run began; NOTE). conformance.sh's report uses them for a
# run that _output/conformance lacks.
# Run it in the checkout that made the run; it replaces an older kept copy (git keeps that).
source "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 RUN [NOTE]" >&2; exit 2; }
run=$1 note=${2:-}
# RUN names a directory under _output/conformance and test/conformance/results: a plain name
# ("" or a path would make rm -rf below remove other kept runs, or all of them).
[[ "$run" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || { echo "keep: RUN must be a plain name (gate-off, upstream, ...), not '$run'" >&2; exit 2; }
src="$CONF_OUT/$run" dst="$CONF_KEPT/$run"
shopt -s nullglob
junits=("$src"/junit*.xml)
[ ${#junits[@]} -gt 0 ] || { echo "keep: no junit*.xml in $src: run make conformance first" >&2; exit 1; }
[ -f "$src/selected.txt" ] || { echo "keep: no $src/selected.txt (run.sh's selection)" >&2; exit 1; }
rm -rf "$dst"
mkdir -p "$dst"
for f in "${junits[@]}"; do
	gzip -9n <"$f" >"$dst/$(basename "$f").gz"
done
cp "$src/selected.txt" "$dst/"
[ -f "$src/duration.txt" ] && cp "$src/duration.txt" "$dst/"
[ -f "$src/kube-proxy.txt" ] && cp "$src/kube-proxy.txt" "$dst/"
# The commit run.sh ran at (commit.txt); HEAD only for a run made before run.sh wrote it.
commit=$(cat "$src/commit.txt" 2>/dev/null || git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
# The run's own day: its first JUnit file's suite timestamp (when the pass began; a file's
# mtime is when a pass ended, or when the directory was copied); the mtime without one.
day=$(grep -o -m1 'timestamp="[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' "${junits[0]}" | head -1 | cut -d'"' -f2 || true)
[ -n "$day" ] || day=$(date -u -r "${junits[0]}" +%F)
{
	echo "commit $commit, $day"
	[ -n "$note" ] && echo "$note"
} >"$dst/about.txt"
echo "keep: $run -> $dst ($(du -sh "$dst" | cut -f1)); commit it"
