#!/usr/bin/env bash
# bench/soak.sh — a long-running tunnel, ferrowg <-> wireguard-go (issue #17, item 11).
#
# Runs, for SOAK_MINUTES (default 32: at least 12 rekeys at REKEY_AFTER_TIME = 120 s), TCP in
# both directions at a bounded rate (iperf3 --bidir -b SOAK_IPERF_RATE, so the CPU is not
# saturated) and a ping every SOAK_PING_INTERVAL s through one tunnel between two namespaces;
# every SOAK_SAMPLE seconds it records the ferrowg daemon's RSS, open file descriptors
# (/proc/PID/fd), threads, the peer's rx/tx bytes and latest handshake (`wg show`). At the end
# it prints a markdown summary and exits 1 when
#   - RSS grew from the start (the first sample after SOAK_WARMUP s of traffic) to the end by more
#     than SOAK_RSS_MARGIN_PCT % (at least 1 MiB),
#   - the file descriptors or the threads grew from the start to the end,
#   - fewer than 12 rekeys were seen (only when SOAK_MINUTES >= 30),
#   - the ping replies stopped for longer than REKEY_TIMEOUT (5 s) at any point,
#   - or the daemon died.
# A rekey is a change of the peer's latest-handshake time. A stall is the longest gap between
# two ping replies (ping -D timestamps), counting the start and the end of the run.
#
# Topology: NS_A (ferrowg, 10.241.1.1) and NS_B (wireguard-go, 10.241.1.2, the iperf3 server),
# the veth pair and names of bench/lib.sh, with the prefix fsk. Needs root. Everything created is
# removed on exit (lib.sh's trap). See bench/README.md.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CMDLINE=$(command_line "$@")
[[ $# -eq 0 ]] || die "no arguments; configure with environment variables (see bench/README.md)"

# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------
MINUTES=${SOAK_MINUTES:-32}
SAMPLE=${SOAK_SAMPLE:-10}                 # seconds between samples
IPERF_RATE=${SOAK_IPERF_RATE:-50M}        # per direction
PING_INTERVAL=${SOAK_PING_INTERVAL:-0.2}  # seconds
RSS_MARGIN_PCT=${SOAK_RSS_MARGIN_PCT:-10}
RESULTS=${SOAK_RESULTS:-}                 # a file to write the report section to; empty = none
SAMPLES_OUT=${SOAK_SAMPLES:-}             # where to keep every sample (TSV); empty = not kept
MIN_REKEYS=12
MAX_STALL_S=5 # REKEY_TIMEOUT

[[ $MINUTES =~ ^[0-9]+$ && $MINUTES -ge 1 && $MINUTES -le 1440 ]] || die "SOAK_MINUTES must be 1..1440"
[[ $SAMPLE =~ ^[0-9]+$ && $SAMPLE -ge 1 && $SAMPLE -le 600 ]] || die "SOAK_SAMPLE must be 1..600 seconds"
[[ $RSS_MARGIN_PCT =~ ^[0-9]+$ ]] || die "SOAK_RSS_MARGIN_PCT must be a whole number"
if ! [[ $PING_INTERVAL =~ ^[0-9]*\.?[0-9]+$ ]] || (($(fcalc "($PING_INTERVAL < 0.01 || $PING_INTERVAL > 10)" %d))); then
	die "SOAK_PING_INTERVAL must be 0.01..10 seconds"
fi
[[ $IPERF_RATE =~ ^[0-9]+[KMG]?$ ]] || die "SOAK_IPERF_RATE must look like 50M"
DURATION=$((MINUTES * 60))
# The start values are taken after this much traffic: buffers are touched lazily.
WARMUP=${SOAK_WARMUP:-$((DURATION / 3 < 60 ? DURATION / 3 : 60))}
[[ $WARMUP =~ ^[0-9]+$ && $WARMUP -lt $DURATION ]] || die "SOAK_WARMUP must be less than the run"

# ---------------------------------------------------------------------------------------------
# Traffic
# ---------------------------------------------------------------------------------------------

# iperf_loop SECONDS: iperf3 --bidir runs back to back until SECONDS have passed (a run that
# fails is counted, and the next one starts), each run's JSON in BENCH_TMP/iperf-N.json.
iperf_loop() {
	local end n=0 left
	end=$(($(date +%s) + $1))
	while :; do
		left=$((end - $(date +%s)))
		((left >= 2)) || break
		n=$((n + 1))
		iperf_client "$BENCH_TMP/iperf-$n.json" "$left" -c 10.241.1.2 --bidir -b "$IPERF_RATE" ||
			echo "$n" >>"$BENCH_TMP/iperf-failed"
		((n < 1000)) || break
	done
}

# iperf_totals: "bytes_ab bytes_ba seconds runs failed" over every run.
iperf_totals() {
	local f ab=0 ba=0 secs=0 runs=0 v a b s
	for f in "$BENCH_TMP"/iperf-*.json; do
		[[ -f $f ]] || continue
		runs=$((runs + 1))
		v=$(jq -r '[.end.sum_received.bytes // 0, .end.sum_received_bidir_reverse.bytes // 0,
			.end.sum_received.seconds // 0] | @tsv' "$f" 2>/dev/null || echo "0	0	0")
		read -r a b s <<<"$v"
		ab=$(fcalc "$ab + $a" %.0f)
		ba=$(fcalc "$ba + $b" %.0f)
		secs=$(fcalc "$secs + $s" %.3f)
	done
	local failed=0
	[[ -f $BENCH_TMP/iperf-failed ]] && failed=$(wc -l <"$BENCH_TMP/iperf-failed")
	echo "$ab $ba $secs $runs $failed"
}

# ping_stats FILE START END: "sent received loss% longest_gap_s gap_at" from ping -D output;
# the gap counts from START to the first reply and from the last reply to END (epoch seconds).
ping_stats() {
	awk -v start="$2" -v end="$3" '
		/packets transmitted/ { s = $1; r = $4 }
		/^\[[0-9.]+\].*bytes from/ {
			t = substr($1, 2, length($1) - 2) + 0
			g = t - prev
			if (g > gap) { gap = g; at = prev - start }
			prev = t
		}
		BEGIN { prev = start; gap = 0; at = 0 }
		END {
			if (end - prev > gap) { gap = end - prev; at = prev - start }
			if (s == "") { s = 0; r = 0 }
			printf "%d %d %.3f %.2f %.0f\n", s, r, (s ? (s - r) * 100 / s : 100), gap, at
		}' "$1"
}

# ---------------------------------------------------------------------------------------------
# Samples
# ---------------------------------------------------------------------------------------------
# sample T: one line of SAMPLES (BENCH_TMP/samples.tsv): seconds since start, RSS KiB, fds,
# threads, rx, tx, latest handshake (epoch s). The fds are counted before `wg show` opens a
# control connection.
sample() {
	local t=$1 rss fds thr rx tx hs
	rss=$(proc_status_kib "$PID_A" VmRSS)
	fds=$(find "/proc/$PID_A/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	thr=$(awk '$1 == "Threads:" { print $2 }' "/proc/$PID_A/status" 2>/dev/null || echo 0)
	read -r _ rx tx <<<"$(timeout 10 ip netns exec "$NS_A" wg show "$IF_A" transfer 2>/dev/null | head -n 1 || true)"
	read -r _ hs <<<"$(timeout 10 ip netns exec "$NS_A" wg show "$IF_A" latest-handshakes 2>/dev/null | head -n 1 || true)"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "${rss:-0}" "$fds" "${thr:-0}" "${rx:-0}" "${tx:-0}" "${hs:-0}" >>"$SAMPLES"
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
bench_init
SAMPLES=$BENCH_TMP/samples.tsv
[[ -x $WIREGUARD_GO ]] || die "wireguard-go not found ($WIREGUARD_GO)"
[[ -x $FERROWG ]] || die "$FERROWG not found: cargo build --release -p ferrowg (or set FERROWG)"
LOAD_START=$(uptime)
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
# shellcheck disable=SC2034 # VERSION is filled by impl_check and read by impl_versions (lib.sh)
declare -A NOTE VERSION
bench_topology fsk
impl_check ferrowg || die "ferrowg: ${NOTE[ferrowg]}"
impl_check wireguard-go || die "wireguard-go: ${NOTE[wireguard-go]}"
PORT=51821
IF_A=fskfga$$
IF_B=fskwgob$$
start_daemon ferrowg "$NS_A" "$IF_A" "$BENCH_TMP/ferrowg.log" || die "ferrowg did not start"
PID_A=$DAEMON_PID
start_daemon wireguard-go "$NS_B" "$IF_B" "$BENCH_TMP/wireguard-go.log" || die "wireguard-go did not start"
PID_B=$DAEMON_PID
write_wg_conf "$BENCH_TMP/a.conf" "$KEY_A" "$PORT" "$PUB_B" "10.241.1.2/32" "$UNDER_B:$PORT"
write_wg_conf "$BENCH_TMP/b.conf" "$KEY_B" "$PORT" "$PUB_A" "10.241.1.1/32" "$UNDER_A:$PORT"
configure_iface "$NS_A" "$IF_A" "$BENCH_TMP/a.conf" "10.241.1.1/24" || die "configuring ferrowg failed"
configure_iface "$NS_B" "$IF_B" "$BENCH_TMP/b.conf" "10.241.1.2/24" || die "configuring wireguard-go failed"
wait_handshake 10.241.1.2 || die "no ping reply through the tunnel after 10 s"
RSS_IDLE=$(proc_status_kib "$PID_A" VmRSS)
log "soak: $MINUTES min of TCP (--bidir, $IPERF_RATE each way) and pings every $PING_INTERVAL s; samples every $SAMPLE s"

T0=$(now)
T0S=${T0%.*}
ping_count=$(fcalc "$DURATION / $PING_INTERVAL" %.0f)
timeout $((DURATION + 60)) ip netns exec "$NS_A" ping -n -D -i "$PING_INTERVAL" -c "$ping_count" -w "$DURATION" \
	-W 1 10.241.1.2 >"$BENCH_TMP/ping.log" 2>&1 &
PING_PID=$!
BENCH_PIDS+=("$PING_PID")
iperf_loop "$DURATION" &
IPERF_PID=$!
BENCH_PIDS+=("$IPERF_PID")

n=0
DIED=""
while :; do
	t=$((n * SAMPLE))
	((t <= DURATION)) || break
	# Sleep until the sample's time (bounded by the run's length).
	left=$(fcalc "$T0 + $t - $(now)" %.3f)
	(($(fcalc "($left > 0)" %d))) && sleep "$left"
	if ! kill -0 "$PID_A" 2>/dev/null; then
		DIED="the ferrowg daemon exited at ${t} s"
		log "$DIED; its log: $(tail -n 5 "$BENCH_TMP/ferrowg.log")"
		break
	fi
	sample "$t"
	if ((n % (300 / SAMPLE > 0 ? 300 / SAMPLE : 1) == 0)); then
		log "$(awk -F'\t' 'END { printf "t=%ss RSS %s KiB, %s fds, %s threads, rx %s tx %s, latest handshake %s", $1, $2, $3, $4, $5, $6, $7 }' "$SAMPLES")"
	fi
	n=$((n + 1))
done
wait "$PING_PID" 2>/dev/null || true
wait "$IPERF_PID" 2>/dev/null || true
LOAD_END=$(uptime)
[[ -n $SAMPLES_OUT ]] && cp "$SAMPLES" "$SAMPLES_OUT"

# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------
# Start = the first sample at or after the warm-up; end = the last sample.
read -r S_T S_RSS S_FD S_THR <<<"$(awk -F'\t' -v w="$WARMUP" '$1 >= w { print $1, $2, $3, $4; exit }' "$SAMPLES")"
read -r E_T E_RSS E_FD E_THR <<<"$(awk -F'\t' 'END { print $1, $2, $3, $4 }' "$SAMPLES")"
read -r M_RSS M_FD M_THR <<<"$(awk -F'\t' '{ if ($2 > r) r = $2; if ($3 > f) f = $3; if ($4 > h) h = $4 } END { print r, f, h }' "$SAMPLES")"
# Rekeys: changes of the latest handshake after the first sample that has one.
REKEYS=$(awk -F'\t' '$7 > 0 { if (prev != "" && $7 != prev) n++; prev = $7 } END { print n + 0 }' "$SAMPLES")
read -r P_SENT P_RECV P_LOSS STALL STALL_AT <<<"$(ping_stats "$BENCH_TMP/ping.log" "$T0" "$(fcalc "$T0 + $DURATION" %.3f)")"
read -r B_AB B_BA B_SECS B_RUNS B_FAILED <<<"$(iperf_totals)"
MBPS_AB=$(fcalc "$B_AB * 8 / ($B_SECS + 1e-9) / 1e6" %.1f)
MBPS_BA=$(fcalc "$B_BA * 8 / ($B_SECS + 1e-9) / 1e6" %.1f)
CPU_A=$(fcalc "$(cpu_ticks "$PID_A") / $CLK_TCK" %.1f)

FAILS=()
[[ -n $DIED ]] && FAILS+=("$DIED")
if [[ -n ${S_RSS:-} && -n ${E_RSS:-} ]]; then
	margin=$((S_RSS * RSS_MARGIN_PCT / 100))
	((margin >= 1024)) || margin=1024
	((E_RSS - S_RSS > margin)) && FAILS+=("RSS grew by $((E_RSS - S_RSS)) KiB (margin $margin KiB)")
	((E_FD > S_FD)) && FAILS+=("file descriptors grew from $S_FD to $E_FD")
	((E_THR > S_THR)) && FAILS+=("threads grew from $S_THR to $E_THR")
else
	FAILS+=("no samples")
	margin=0
fi
((MINUTES >= 30 && REKEYS < MIN_REKEYS)) && FAILS+=("only $REKEYS rekeys (at least $MIN_REKEYS in $MINUTES min)")
(($(fcalc "($STALL > $MAX_STALL_S)" %d))) && FAILS+=("ping stalled for $STALL s (at ${STALL_AT} s; bound: REKEY_TIMEOUT = $MAX_STALL_S s)")
((B_RUNS > 0)) || FAILS+=("no iperf3 run completed")

REPORT=$BENCH_TMP/report.md
{
	echo "## Soak (bench/soak.sh)"
	echo
	echo "- Date: $DATE"
	echo "- Command: \`$CMDLINE\`"
	echo "- Settings: $MINUTES min; iperf3 TCP --bidir at $IPERF_RATE each way (cubic), runs back to back;" \
		"ping every $PING_INTERVAL s A->B; a sample every $SAMPLE s; start values after ${WARMUP} s of traffic;" \
		"RSS margin $RSS_MARGIN_PCT % (at least 1 MiB); tunnel MTU $TUNNEL_MTU; peer: wireguard-go"
	machine_info
	echo "- Load averages (\`uptime\`), start: ${LOAD_START##*load average: }; end: ${LOAD_END##*load average: }"
	impl_versions ferrowg wireguard-go
	echo
	{
		printf 'measure\tstart (t = %s s)\tend (t = %s s)\tmax\tbound\n' "${S_T:--}" "${E_T:--}"
		printf 'ferrowg RSS KiB (idle before traffic: %s)\t%s\t%s\t%s\tend - start <= %s KiB\n' "$RSS_IDLE" "${S_RSS:--}" "${E_RSS:--}" "${M_RSS:--}" "$margin"
		printf 'open file descriptors\t%s\t%s\t%s\tno growth\n' "${S_FD:--}" "${E_FD:--}" "${M_FD:--}"
		printf 'threads\t%s\t%s\t%s\tno growth\n' "${S_THR:--}" "${E_THR:--}" "${M_THR:--}"
		printf 'rekeys (latest-handshake changes)\t\t%s\t\t%s\n' "$REKEYS" "$( ((MINUTES >= 30)) && echo ">= $MIN_REKEYS" || echo "(checked from 30 min)")"
		printf 'ping loss %% (received/sent)\t\t%s (%s/%s)\t\t\n' "$P_LOSS" "$P_RECV" "$P_SENT"
		printf 'longest stall (no ping reply), s\t\t%s (at %s s)\t\t<= %s\n' "$STALL" "$STALL_AT" "$MAX_STALL_S"
		printf 'TCP A->B / B->A Mbit/s (offered %s each)\t\t%s / %s\t\t%s run(s), %s failed\n' "$IPERF_RATE" "$MBPS_AB" "$MBPS_BA" "$B_RUNS" "$B_FAILED"
		printf 'ferrowg CPU s (whole run)\t\t%s\t\t\n' "$CPU_A"
	} | md_table
	echo
	if ((${#FAILS[@]})); then
		echo "**Result: FAIL** — ${FAILS[*]}"
	else
		echo "**Result: pass**"
	fi
	echo
	echo "Samples (every $((300 / SAMPLE > 0 ? 300 / SAMPLE * SAMPLE : SAMPLE)) s and the last; rx/tx are the peer's byte counters in ferrowg):"
	echo
	{
		printf 't s\tRSS KiB\tfds\tthreads\trx bytes\ttx bytes\tlatest handshake (s before the sample)\n'
		awk -F'\t' -v every=$((300 / SAMPLE > 0 ? 300 / SAMPLE : 1)) -v t0="$T0S" '
			function row() { printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", $1, $2, $3, $4, $5, $6, ($7 > 0 ? t0 + $1 - $7 : "-") }
			{ if ((NR - 1) % every == 0) { row(); done = NR } last = $0 }
			END { if (done != NR) { $0 = last; row() } }' "$SAMPLES"
	} | md_table
} >"$REPORT"

echo
cat "$REPORT"
[[ -n $RESULTS ]] && write_section "$RESULTS" soak "$REPORT" && log "wrote $RESULTS"
stop_daemon "$PID_A" "$IF_A"
stop_daemon "$PID_B" "$IF_B"
if ((${#FAILS[@]})); then
	log "soak failed: ${FAILS[*]}"
	exit 1
fi
exit 0
