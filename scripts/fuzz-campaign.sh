#!/usr/bin/env bash
# A fuzzing campaign: runs the cargo-fuzz targets one after another, each until it has used
# CPU_SECONDS of CPU time (measured from /proc, so a busy machine stretches the wall time
# but not the work), and prints one markdown row per target: executions, final coverage,
# CPU time, outcome. Corpora are kept in fuzz/corpus/<target>/ between runs; a crash stops
# that target and leaves its input in fuzz/artifacts/<target>/.
#
#   scripts/fuzz-campaign.sh CPU_SECONDS [TARGET...]     (default: every target)
#
# FUZZ_NICE (default 19) is the niceness the fuzzer runs at; logs go to FUZZ_LOGS (default:
# a new temporary directory). Needs nightly and cargo-fuzz, like scripts/fuzz.sh. Do not pause
# a fuzzer (SIGSTOP) for longer than libFuzzer's per-input timeout (1,200 s): on resuming it
# reports the input it was running as a timeout.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

budget="${1:-}"
if ! [[ "$budget" =~ ^[0-9]+$ ]] || [ "$budget" -eq 0 ]; then
  echo "usage: $0 CPU_SECONDS [TARGET...]" >&2
  exit 2
fi
shift
nice_level="${FUZZ_NICE:-19}"
logs="${FUZZ_LOGS:-$(mktemp -d -t ferrowg-campaign.XXXXXX)}"
mkdir -p "$logs"
cargo +nightly fuzz build >/dev/null
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
tick="$(getconf CLK_TCK)"

# CPU seconds used so far by process $1 (user + system).
cpu_of() {
  awk -v t="$tick" '{ sub(/^.*\) /, ""); print int(($12 + $13) / t) }' "/proc/$1/stat" 2>/dev/null || echo 0
}

echo "| target | executions | cov | CPU time | outcome |"
echo "|---|---:|---:|---:|---|"
for t in "${targets[@]}"; do
  bin="target/x86_64-unknown-linux-gnu/release/$t"
  mkdir -p "corpus/$t" "artifacts/$t"
  dirs=("corpus/$t")
  [ -d "regressions/$t" ] && dirs+=("regressions/$t")
  nice -n "$nice_level" "$bin" "${dirs[@]}" -artifact_prefix="artifacts/$t/" \
    -print_final_stats=1 >"$logs/$t.log" 2>&1 &
  pid=$!
  used=0
  while kill -0 "$pid" 2>/dev/null; do
    used="$(cpu_of "$pid")"
    if [ "$used" -ge "$budget" ]; then
      kill -INT "$pid" 2>/dev/null || true
      break
    fi
    sleep 5
  done
  rc=0
  wait "$pid" || rc=$?
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' | tail -1)"
  if [ -z "$execs" ]; then
    execs="$(grep -o '#[0-9]*' "$logs/$t.log" | tail -1 | tr -d '#')"
  fi
  cov="$(grep -o 'cov: [0-9]*' "$logs/$t.log" | tail -1 | grep -o '[0-9]*')"
  outcome="nothing found"
  if grep -q "ERROR: libFuzzer\|panicked\|SUMMARY: AddressSanitizer\|==ERROR" "$logs/$t.log"; then
    outcome="**crash** (see $logs/$t.log)"
  fi
  echo "| \`$t\` | ${execs:-?} | ${cov:-?} | $((used / 60)) min $((used % 60)) s | $outcome |"
done
echo
echo "logs: $logs"
