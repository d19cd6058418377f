#!/bin/sh
# run.sh [seconds [state-seconds]]: builds the fuzz targets and runs each from its seed corpus
# (fuzz/corpus/<target>).
#
#   fuzz-snapshot  runs `seconds` (default: $HENGE_FUZZ_SECONDS, else 60)
#   fuzz-device    `state-seconds` (default: a third of `seconds`, at least 5)
#   fuzz-slots     `state-seconds`
#   fuzz-dnssd     `state-seconds` (the mDNS answer parser)
#
# What the fuzzers find worth keeping goes to build/fuzzing/work/<target> (kept between runs, so a
# later run starts where this one stopped); a crash to build/fuzzing/artifacts/. One summary line per
# target:
#   FUZZ target=snapshot seconds=60 runs=4612345 exec_per_s=76872 cov=512 ft=3120 corpus=811 crashes=0
# Exit 1 when a target crashed (its artifact path is printed), 2 when the build failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$here/.." && pwd)/build/fuzzing
seconds=${1:-${HENGE_FUZZ_SECONDS:-60}}
case $seconds in '' | *[!0-9]*) echo "run.sh: seconds must be a whole number, got $seconds" >&2; exit 2 ;; esac
small=${2:-$((seconds / 3))}
case $small in '' | *[!0-9]*) echo "run.sh: state-seconds must be a whole number, got $small" >&2; exit 2 ;; esac
[ "$small" -lt 5 ] && [ -z "${2:-}" ] && small=5

make -C "$here" --no-print-directory -s fuzzers >&2 || exit 2
mkdir -p "$build/artifacts"
status=0
for spec in "snapshot $seconds 4200 -dict=$here/snapshot.dict" "device $small 512" "slots $small 512" "dnssd $small 1600"; do
  set -- $spec
  target=$1 secs=$2 max_len=$3
  shift 3
  work=$build/work/$target
  log=$build/$target.log
  mkdir -p "$work"
  # -use_value_profile: compare operands as coverage (lengths, magic numbers); -timeout: one input
  # taking 10 s is a hang; -rss_limit_mb: the core allocates nothing, so memory growth is a finding.
  "$build/fuzz-$target" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -use_value_profile=1 -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" "$@" \
    "$work" "$here/corpus/$target" >"$log" 2>&1
  code=$?
  # "#4612345 DONE cov: 512 ft: 3120 corp: 811/102Kb ..." (the last status line) and the final stats.
  line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
  runs=$(grep -E '^stat::number_of_executed_units:' "$log" | awk '{ print $2 }')
  eps=$(grep -E '^stat::average_exec_per_sec:' "$log" | awk '{ print $2 }')
  cov=$(printf '%s\n' "$line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(printf '%s\n' "$line" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(printf '%s\n' "$line" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
  crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | head -n 1)
  crashes=0
  if [ "$code" -ne 0 ] || [ -n "$crash" ]; then
    crashes=1
    status=1
  fi
  echo "FUZZ target=$target seconds=$secs runs=${runs:-0} exec_per_s=${eps:-0} cov=${cov:-0} ft=${ft:-0} corpus=${corp:-0} crashes=$crashes"
  if [ "$crashes" -ne 0 ]; then
    echo "  exit $code; artifact: ${crash:-none}; log: $log" >&2
    grep -E 'fuzz_(snapshot|device|slots|dnssd):|ERROR: |SUMMARY: ' "$log" | head -n 5 >&2
  fi
done
exit "$status"
