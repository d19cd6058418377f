#!/bin/sh
# coverage.sh: how much of core/ the fuzz corpora reach. Replays the seed corpus and what the fuzzers
# kept (build/fuzzing/work/<target>) through clang's source-based coverage and prints llvm-cov's
# report for core/*.c, all four targets merged; the last line is "COVERAGE lines=..% branches=..%
# functions=..%" (of core/ only).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fw=$(cd "$here/.." && pwd)
build=$fw/build/fuzzing
profdata=$(command -v llvm-profdata || true)
cov=$(command -v llvm-cov || true)
[ -n "$profdata" ] && [ -n "$cov" ] || { echo "coverage.sh: llvm-profdata and llvm-cov are needed (Debian package llvm)" >&2; exit 2; }
make -C "$here" --no-print-directory -s coverage >&2
rm -rf "$build/profiles" && mkdir -p "$build/profiles"
for target in snapshot device slots dnssd; do
  inputs="$here/corpus/$target"
  [ -d "$build/work/$target" ] && inputs="$inputs $build/work/$target"
  [ "$target" = snapshot ] && inputs="$inputs $here/known"
  # shellcheck disable=SC2086
  LLVM_PROFILE_FILE="$build/profiles/$target.profraw" "$build/cov-$target" $inputs >/dev/null
done
"$profdata" merge -sparse "$build"/profiles/*.profraw -o "$build/profiles/all.profdata"
# core/ only: the targets' own files are left out by name.
"$cov" report "$build/cov-snapshot" -object="$build/cov-device" -object="$build/cov-slots" -object="$build/cov-dnssd" -instr-profile="$build/profiles/all.profdata" \
  -ignore-filename-regex='(fuzz_|replay_main)' | tee "$build/coverage.txt"
# The TOTAL row: Regions Missed Cover Functions Missed Executed Lines Missed Cover Branches Missed Cover
awk '$1 == "TOTAL" { printf "COVERAGE lines=%s branches=%s functions=%s regions=%s\n", $10, $13, $7, $4 }' "$build/coverage.txt"
