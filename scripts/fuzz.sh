#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for SECONDS (default 60) of libFuzzer
# time; fails if any target crashes (a panic, a failed assertion, a sanitizer report, a
# timeout or running out of memory), naming the target and its reproducer.
#
#   scripts/fuzz.sh [SECONDS]
#
# Needs the nightly toolchain and cargo-fuzz; it installs neither and says so when one is
# missing. Targets run FUZZ_JOBS at a time (default: the number of CPUs), each on one CPU.
# Each target first replays its saved crash inputs (fuzz/regressions/<target>/, which must
# not crash), then its corpus (fuzz/corpus/<target>/, kept between runs), then fuzzes.
# Logs go to FUZZ_LOGS (default: a new temporary directory); the summary prints libFuzzer's
# final executions and coverage per target.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: $0 [SECONDS]  (a positive number of seconds per target)" >&2
  exit 2
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: the nightly toolchain is missing; install it with: rustup toolchain install nightly" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing; install it with: cargo install --locked cargo-fuzz" >&2
  exit 2
fi

jobs="${FUZZ_JOBS:-$(nproc)}"
logs="${FUZZ_LOGS:-$(mktemp -d -t ferrowg-fuzz.XXXXXX)}"
mkdir -p "$logs"

echo "fuzz.sh: building every target (nightly, AddressSanitizer)"
cargo +nightly fuzz build
mapfile -t targets < <(cargo +nightly fuzz list)
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, $jobs at a time; logs in $logs"

# Runs one target and records libFuzzer's exit status (0: nothing found) in $logs/<target>.rc.
run_target() {
  local t="$1" dirs=("corpus/$1") rc=0
  mkdir -p "corpus/$t"
  if [ -d "regressions/$t" ]; then
    dirs+=("regressions/$t")
  fi
  cargo +nightly fuzz run "$t" "${dirs[@]}" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$logs/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$logs/$t.rc"
}

for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || true
  done
  run_target "$t" &
done
wait

failed=()
printf '%-16s %12s %8s  %s\n' target executions cov result
for t in "${targets[@]}"; do
  log="$logs/$t.log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
  result=ok
  if [ "$(cat "$logs/$t.rc" 2>/dev/null || echo missing)" != 0 ]; then
    failed+=("$t")
    result="FAILED: $(grep -m1 -o 'Test unit written to .*' "$log" || echo "see $log")"
  fi
  printf '%-16s %12s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "$result"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]} (logs in $logs)" >&2
  exit 1
fi
echo "fuzz.sh: every target ran ${seconds}s without a crash"
