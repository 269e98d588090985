#!/usr/bin/env bash
# bench/tunnel.sh — side-by-side tunnel benchmark (issue #4).
#
# Brings up one WireGuard tunnel per installed implementation (ferrowg, wireguard-go,
# boringtun-cli, gotatun) between two network namespaces this script creates, all with the same
# keys, MTU 1420 and the same addressing scheme, configured with the stock `wg setconf` over the
# UAPI socket; then measures, in one run and interleaved so that background load hits every
# implementation alike:
#   - iperf3 TCP, 1 and 4 streams, A->B and B->A (BENCH_REPS runs of BENCH_SECONDS each;
#     median and min-max),
#   - the UDP loss knee: iperf3 UDP at doubling then bisected rates; packets/s delivered at the
#     highest rate with < 1 % loss,
#   - ping RTT min/avg/max,
#   - each daemon's CPU during the TCP tests (/proc/PID/stat), idle and peak RSS
#     (/proc/PID/status VmRSS, VmHWM),
#   - UDP receive-buffer drops (Udp RcvbufErrors in /proc/net/snmp) per run,
# and the bare veth pair without a tunnel as the ceiling. Prints one markdown table and writes
# it, with machine, versions, load and the details, to bench/RESULTS.md. See bench/README.md.
#
# Topology: see the diagram in bench/lib.sh. Needs root. Everything created is removed on exit.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CMDLINE=$(command_line "$@")
[[ $# -eq 0 ]] || die "no arguments; configure with environment variables (see bench/README.md)"

# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------
QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
	: "${BENCH_SECONDS:=3}" "${BENCH_REPS:=1}" "${BENCH_UDP_SECONDS:=2}" "${BENCH_UDP_BISECT:=1}"
	: "${BENCH_PING_COUNT:=50}" "${BENCH_RESULTS=}"
fi
PING_ONLY=${BENCH_PING_ONLY:-0}
[[ $PING_ONLY == 1 ]] && : "${BENCH_RESULTS=}"
SECS=${BENCH_SECONDS:-10}              # each TCP test
REPS=${BENCH_REPS:-3}                  # runs of every TCP test
UDP_SECS=${BENCH_UDP_SECONDS:-5}       # each UDP rate step
UDP_START=${BENCH_UDP_START:-50}       # Mbit/s, first offered rate
UDP_MAX=${BENCH_UDP_MAX:-12800}        # Mbit/s, doubling stops here
UDP_BISECT=${BENCH_UDP_BISECT:-3}      # bisection steps between last good and first bad rate
UDP_LEN=${BENCH_UDP_LEN:-1392}         # UDP payload: 1392 + 8 + 20 = 1420, a full tunnel MTU
UDP_WINDOW=${BENCH_UDP_WINDOW:-4M}     # iperf3 socket buffers, so iperf3 itself drops less
UDP_LOSS_MAX=${BENCH_UDP_LOSS:-1}      # percent
PING_COUNT=${BENCH_PING_COUNT:-200}
PING_ROUNDS=${BENCH_PING_ROUNDS:-4}   # the pings of each target come in this many turns
RESULTS=${BENCH_RESULTS-$BENCH_DIR/RESULTS.md}
read -r -a IMPLS <<<"${BENCH_IMPLS:-${TUNNEL_IMPLS[*]}}"
WITH_VETH=${BENCH_VETH:-1}

# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------
declare -A PID_A PID_B IF_A IF_B DST PORT NOTE VERSION SOCKBUF
declare -A RES         # "$t|$test" -> space-separated Gbit/s, one per run
declare -A CPU_TICKS CPU_WALL BG_TICKS BG_WALL BYTES TCP_RB_A TCP_RB_B TCP_WGD_A TCP_WGD_B
declare -A UDP_PPS UDP_RATE UDP_NOTE UDP_RB UDP_WGD UDP_STEPS
declare -A PING_MIN PING_AVG PING_MAX PING_MDEV PING_LOSS PING_SENT
declare -A RSS_IDLE RSS_PEAK RSS_IDLE_AB RSS_PEAK_AB PRIV_IDLE_AB
TARGETS=() # what is measured: "veth" and the implementations that came up
UP=()      # implementations whose daemons are running
FAILED_RUNS=0

TESTS=(tcp1_ab tcp1_ba tcp4_ab tcp4_ba)
test_streams() { case $1 in tcp1_*) echo 1 ;; tcp4_*) echo 4 ;; esac }
test_label() {
	case $1 in
	tcp1_ab) echo "TCP 1-stream A->B" ;; tcp1_ba) echo "TCP 1-stream B->A" ;;
	tcp4_ab) echo "TCP 4-stream A->B" ;; tcp4_ba) echo "TCP 4-stream B->A" ;;
	esac
}

# ---------------------------------------------------------------------------------------------
# Bring-up
# ---------------------------------------------------------------------------------------------
bring_up() {
	local impl=$1 k tag port
	k=$(impl_slot "$impl")
	tag=$(impl_tag "$impl")
	port=$((51820 + k))
	PORT[$impl]=$port
	IF_A[$impl]=fb${tag}a$$
	IF_B[$impl]=fb${tag}b$$
	start_daemon "$impl" "$NS_A" "${IF_A[$impl]}" "$BENCH_TMP/$impl-a.log" || return 1
	PID_A[$impl]=$DAEMON_PID
	start_daemon "$impl" "$NS_B" "${IF_B[$impl]}" "$BENCH_TMP/$impl-b.log" || return 1
	PID_B[$impl]=$DAEMON_PID
	write_wg_conf "$BENCH_TMP/$impl-a.conf" "$KEY_A" "$port" "$PUB_B" "10.241.$k.2/32" "$UNDER_B:$port"
	write_wg_conf "$BENCH_TMP/$impl-b.conf" "$KEY_B" "$port" "$PUB_A" "10.241.$k.1/32" "$UNDER_A:$port"
	configure_iface "$NS_A" "${IF_A[$impl]}" "$BENCH_TMP/$impl-a.conf" "10.241.$k.1/24" || return 1
	configure_iface "$NS_B" "${IF_B[$impl]}" "$BENCH_TMP/$impl-b.conf" "10.241.$k.2/24" || return 1
	DST[$impl]=10.241.$k.2
	if ! wait_handshake "${DST[$impl]}"; then
		log "$impl: no ping reply through the tunnel after 10 s"
		return 1
	fi
	SOCKBUF[$impl]="$(udp_port_bufs "$NS_A" "$port") / $(udp_port_bufs "$NS_B" "$port")"
}

bring_down() {
	local impl=$1
	[[ -n ${PID_A[$impl]:-} ]] && stop_daemon "${PID_A[$impl]}" "${IF_A[$impl]}"
	[[ -n ${PID_B[$impl]:-} ]] && stop_daemon "${PID_B[$impl]}" "${IF_B[$impl]}"
	unset "PID_A[$impl]" "PID_B[$impl]"
}

# ---------------------------------------------------------------------------------------------
# Measurement bracket: CPU ticks of every running daemon, UDP drop counters, wall time.
# ---------------------------------------------------------------------------------------------
declare -A M_TK
measure_begin() {
	local t=$1 i
	M_RA=$(udp_rcvbuf_errors "$NS_A")
	M_RB=$(udp_rcvbuf_errors "$NS_B")
	M_WGA=0 M_WGB=0 M_TA=0 M_TB=0
	if [[ $t != veth ]]; then
		M_WGA=$(udp_port_drops "$NS_A" "${PORT[$t]}")
		M_WGB=$(udp_port_drops "$NS_B" "${PORT[$t]}")
		M_TA=$(tun_dropped "$NS_A" "${IF_A[$t]}" tx)
		M_TB=$(tun_dropped "$NS_B" "${IF_B[$t]}" rx)
	fi
	for i in "${UP[@]}"; do M_TK[$i]=$(($(cpu_ticks "${PID_A[$i]}") + $(cpu_ticks "${PID_B[$i]}"))); done
	M_T0=$(now)
}

# Sets M_WALL (s), M_TICKS (target's daemons), M_DRA, M_DRB (Udp RcvbufErrors in A, B), M_DWA,
# M_DWB (drops on the daemons' UDP sockets), M_DTA (tun A tx dropped), M_DTB (tun B rx dropped);
# charges the other daemons'
# ticks to their background account.
measure_end() {
	local t=$1 i d
	M_WALL=$(fcalc "$(now) - $M_T0")
	M_TICKS=0
	for i in "${UP[@]}"; do
		d=$(($(cpu_ticks "${PID_A[$i]}") + $(cpu_ticks "${PID_B[$i]}") - M_TK[$i]))
		if [[ $i == "$t" ]]; then
			M_TICKS=$d
		else
			BG_TICKS[$i]=$((${BG_TICKS[$i]:-0} + d))
			BG_WALL[$i]=$(fcalc "${BG_WALL[$i]:-0} + $M_WALL")
		fi
	done
	M_DRA=$(($(udp_rcvbuf_errors "$NS_A") - M_RA))
	M_DRB=$(($(udp_rcvbuf_errors "$NS_B") - M_RB))
	M_DWA=0 M_DWB=0 M_DTA=0 M_DTB=0
	if [[ $t != veth ]]; then
		M_DWA=$(($(udp_port_drops "$NS_A" "${PORT[$t]}") - M_WGA))
		M_DWB=$(($(udp_port_drops "$NS_B" "${PORT[$t]}") - M_WGB))
		M_DTA=$(($(tun_dropped "$NS_A" "${IF_A[$t]}" tx) - M_TA))
		M_DTB=$(($(tun_dropped "$NS_B" "${IF_B[$t]}" rx) - M_TB))
	fi
	return 0
}

# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------
# One round of pings to target $1 (count $2); appends each reply's RTT in ms to $BENCH_TMP/$1-ping.rtt
# and adds to the sent/received counts.
ping_round() {
	local t=$1 count=$2 out
	out=$(ip netns exec "$NS_A" ping -n -c "$count" -i 0.01 -w $((count / 50 + 20)) "${DST[$t]}" 2>&1 || true)
	grep -oE 'time=[0-9.]+' <<<"$out" | cut -d= -f2 >>"$BENCH_TMP/$t-ping.rtt" || true
	PING_SENT[$t]=$((${PING_SENT[$t]:-0} + count))
}

# PING_COUNT pings per target in PING_ROUNDS rounds, the targets taking turns, so that a busy
# moment of this shared machine hits every implementation alike; then min/avg/max/mdev and loss
# over all of a target's replies.
run_pings() {
	local round t per=$(((PING_COUNT + PING_ROUNDS - 1) / PING_ROUNDS)) stats
	for ((round = 1; round <= PING_ROUNDS; round++)); do
		for t in "${TARGETS[@]}"; do ping_round "$t" "$per"; done
	done
	for t in "${TARGETS[@]}"; do
		stats=$(awk -v sent="${PING_SENT[$t]}" '
			NR == 1 { min = $1; max = $1 }
			{ n++; s += $1; q += $1 * $1; if ($1 < min) min = $1; if ($1 > max) max = $1 }
			END {
				loss = sent > 0 ? 100 * (sent - n) / sent : 100
				if (n == 0) { printf "- - - - %g\n", loss; exit }
				a = s / n; v = q / n - a * a; if (v < 0) v = 0
				printf "%.3f %.3f %.3f %.3f %g\n", min, a, max, sqrt(v), loss
			}' "$BENCH_TMP/$t-ping.rtt" 2>/dev/null || echo "- - - - 100")
		read -r PING_MIN[$t] PING_AVG[$t] PING_MAX[$t] PING_MDEV[$t] PING_LOSS[$t] <<<"$stats"
		[[ ${PING_AVG[$t]} == - ]] && PING_MIN[$t]="" PING_AVG[$t]="" PING_MAX[$t]="" PING_MDEV[$t]=""
		log "ping $(impl_label "$t"): min/avg/max ${PING_MIN[$t]:-?}/${PING_AVG[$t]:-?}/${PING_MAX[$t]:-?} ms, loss ${PING_LOSS[$t]:-?}%"
	done
}

run_tcp() {
	local t=$1 test=$2 rep=$3 out rev=() gbps="" bytes=0
	out=$BENCH_TMP/$t-$test-$rep.json
	[[ $test == *_ba ]] && rev=(-R)
	measure_begin "$t"
	if iperf_client "$out" "$SECS" -c "${DST[$t]}" -P "$(test_streams "$test")" "${rev[@]}"; then
		gbps=$(jq -r '.end.sum_received.bits_per_second / 1e9' "$out")
		bytes=$(jq -r '.end.sum_received.bytes' "$out")
	else
		FAILED_RUNS=$((FAILED_RUNS + 1))
	fi
	measure_end "$t"
	RES[$t|$test]="${RES[$t|$test]:-} ${gbps:-}"
	CPU_TICKS[$t]=$((${CPU_TICKS[$t]:-0} + M_TICKS))
	CPU_WALL[$t]=$(fcalc "${CPU_WALL[$t]:-0} + $M_WALL")
	BYTES[$t]=$(fcalc "${BYTES[$t]:-0} + $bytes" %.0f)
	TCP_RB_A[$t]=$((${TCP_RB_A[$t]:-0} + M_DRA))
	TCP_RB_B[$t]=$((${TCP_RB_B[$t]:-0} + M_DRB))
	TCP_WGD_A[$t]=$((${TCP_WGD_A[$t]:-0} + M_DWA))
	TCP_WGD_B[$t]=$((${TCP_WGD_B[$t]:-0} + M_DWB))
	log "$(printf '%-22s %-18s run %d: %s Gbit/s, daemons CPU %s%%, RcvbufErrors A/B %d/%d (WG sockets %d/%d)' \
		"$(impl_label "$t")" "$(test_label "$test")" "$rep" "$([[ -n $gbps ]] && fcalc "$gbps" %.2f || echo FAILED)" \
		"$(fcalc "$M_TICKS / $CLK_TCK / $M_WALL * 100" %.0f)" "$M_DRA" "$M_DRB" "$M_DWA" "$M_DWB")"
}

# udp_step T RATE_MBPS: one iperf3 UDP run; sets U_OK U_LOSS U_PPS U_SENT and logs a row.
udp_step() {
	local t=$1 rate=$2 out
	out=$BENCH_TMP/$t-udp-$rate.json
	U_OK=0 U_LOSS=100 U_PPS=0 U_SENT=0
	measure_begin "$t"
	if iperf_client "$out" "$UDP_SECS" -c "${DST[$t]}" -u -b "${rate}M" -l "$UDP_LEN" -w "$UDP_WINDOW"; then
		U_OK=1
		U_LOSS=$(jq -r '.end.sum_received.lost_percent' "$out")
		U_PPS=$(jq -r '.end.sum_received | (.packets - .lost_packets) / .seconds | floor' "$out")
		U_SENT=$(jq -r '.end.sum_sent.bits_per_second / 1e6 | floor' "$out")
	else
		FAILED_RUNS=$((FAILED_RUNS + 1))
	fi
	measure_end "$t"
	UDP_RB[$t]=$((${UDP_RB[$t]:-0} + M_DRB))
	UDP_WGD[$t]=$((${UDP_WGD[$t]:-0} + M_DWB))
	UDP_STEPS[$t]+="$rate	$U_SENT	$(fcalc "$U_LOSS" %.2f)	$U_PPS	$M_DRB	$M_DWB	$M_DTA	$M_DTB	$(fcalc "$M_TICKS / $CLK_TCK / $M_WALL * 100" %.0f)
"
	if udp_good && ((U_PPS > ${BEST_PPS:-0})); then BEST_PPS=$U_PPS BEST_RATE=$rate; fi
	log "$(printf '%-22s UDP %6d Mbit/s offered: sent %6d Mbit/s, loss %6.2f%%, %8d pps delivered; drops: RcvbufErrors B %d (WG socket %d), tun A tx %d, tun B rx %d' \
		"$(impl_label "$t")" "$rate" "$U_SENT" "$U_LOSS" "$U_PPS" "$M_DRB" "$M_DWB" "$M_DTA" "$M_DTB")"
}

udp_good() { ((U_OK)) && awk -v l="$U_LOSS" -v m="$UDP_LOSS_MAX" 'BEGIN { exit !(l < m) }'; }

# udp_try T RATE: a rate counts as lossy only when two runs in a row lose >= UDP_LOSS_MAX, so
# one scheduling hiccup on a shared machine does not end the search early.
udp_try() {
	udp_step "$1" "$2"
	udp_good && return 0
	log "$(impl_label "$1"): lossy at $2 Mbit/s; confirming with a second run"
	udp_step "$1" "$2"
	udp_good
}

# Doubling from UDP_START until loss >= UDP_LOSS_MAX, BENCH_UDP_MAX, or iperf3 can no longer
# offer the rate without loss (sender-limited: the ceiling is then iperf3), then UDP_BISECT
# bisection steps between the last good and the first bad rate. At most
# 2 * (log2(MAX/START) + 1 + max(BISECT, 3)) runs (a lossy rate is run twice, see udp_try). The result is the best delivered pps among the runs
# with < UDP_LOSS_MAX loss (normally the run at the highest such rate).
udp_knee() {
	local t=$1 rate=$UDP_START good=0 bad=0 limited=0 ok mid i
	BEST_PPS="" BEST_RATE=0
	UDP_NOTE[$t]=""
	while ((rate <= UDP_MAX)); do
		if udp_try "$t" "$rate"; then ok=1; else ok=0; fi
		# Loss-free but iperf3 could not offer the rate: the ceiling is iperf3, not the tunnel.
		# (When the run was lossy as well, the tunnel is overloaded and this is a normal knee.)
		if ((ok && U_SENT * 10 < rate * 9)); then
			limited=1
			UDP_NOTE[$t]="sender-limited: iperf3 could offer only $U_SENT of $rate Mbit/s"
			break
		fi
		if ((ok)); then good=$rate; else
			bad=$rate
			break
		fi
		rate=$((rate * 2))
	done
	if ((!limited && bad == 0)); then
		UDP_NOTE[$t]="no knee up to BENCH_UDP_MAX=$UDP_MAX Mbit/s"
	fi
	if ((!limited && good == 0)); then
		# Lossy already at the first rate: look below it (bounded).
		rate=$UDP_START
		for ((i = 0; i < 3; i++)); do
			bad=$rate
			rate=$((rate / 2))
			((rate > 0)) || break
			if udp_try "$t" "$rate"; then
				good=$rate
				break
			fi
		done
	fi
	if ((!limited && good > 0 && bad > 0)); then
		for ((i = 0; i < UDP_BISECT; i++)); do
			mid=$(((good + bad) / 2))
			((mid > good && mid < bad)) || break
			if udp_try "$t" "$mid"; then good=$mid; else bad=$mid; fi
		done
	fi
	UDP_RATE[$t]=$BEST_RATE
	UDP_PPS[$t]=$BEST_PPS
	[[ -z $BEST_PPS ]] && UDP_NOTE[$t]="loss >= ${UDP_LOSS_MAX}% at every rate tried"
	log "$(impl_label "$t"): UDP knee ${BEST_PPS:-none} pps at $BEST_RATE Mbit/s offered ${UDP_NOTE[$t]}"
}

# private_kib PID: memory only this process holds (Private_Clean + Private_Dirty of
# /proc/PID/smaps_rollup): its heap, stacks and written data, without the pages of the binary
# and libraries it shares with the page cache, which VmRSS also counts.
private_kib() {
	awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s + 0 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo "?"
}

record_rss() { # record_rss T idle|peak
	local t=$1 kind=$2 field a b
	[[ $kind == idle ]] && field=VmRSS || field=VmHWM
	a=$(proc_status_kib "${PID_A[$t]}" "$field")
	b=$(proc_status_kib "${PID_B[$t]}" "$field")
	if [[ $kind == idle ]]; then
		RSS_IDLE[$t]=$((a > b ? a : b)) RSS_IDLE_AB[$t]="$a/$b"
		PRIV_IDLE_AB[$t]="$(private_kib "${PID_A[$t]}")/$(private_kib "${PID_B[$t]}")"
	else
		RSS_PEAK[$t]=$((a > b ? a : b)) RSS_PEAK_AB[$t]="$a/$b"
	fi
}

# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------
bench_init
LOAD_START=$(uptime)
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
log "tunnel benchmark: TCP ${REPS}x${SECS}s, UDP steps ${UDP_SECS}s, ping x$PING_COUNT; load: ${LOAD_START##*load average: }"

bench_topology fwb

[[ $WITH_VETH == 1 ]] && { TARGETS+=(veth) && DST[veth]=$UNDER_B; }
for impl in "${IMPLS[@]}"; do
	impl_check "$impl" || continue
	log "$impl: bringing up ${VERSION[$impl]}"
	if bring_up "$impl"; then
		TARGETS+=("$impl")
		UP+=("$impl")
	else
		NOTE[$impl]="not run: the tunnel did not come up (start-up, wg setconf or handshake failed)"
		log "$impl: ${NOTE[$impl]}"
		bring_down "$impl"
	fi
done
((${#TARGETS[@]} > 0)) || die "nothing to measure"

sleep 2
for t in "${UP[@]}"; do record_rss "$t" idle; done
run_pings
if [[ $PING_ONLY != 1 ]]; then
	for ((rep = 1; rep <= REPS; rep++)); do
		for t in "${TARGETS[@]}"; do
			for test in "${TESTS[@]}"; do run_tcp "$t" "$test" "$rep"; done
		done
	done
	for t in "${TARGETS[@]}"; do udp_knee "$t"; done
fi
for t in "${UP[@]}"; do record_rss "$t" peak; done
LOAD_END=$(uptime)
for t in "${UP[@]}"; do bring_down "$t"; done

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
declare -A VAL # "$t|$col" -> the number in the cell and in the ratio row
higher_is_better() { [[ $1 == tcp* || $1 == udp ]]; }

# compute_vals T: the numbers behind the cells (and the ratio row), in this shell.
compute_vals() {
	local t=$1 test
	for test in "${TESTS[@]}"; do
		VAL[$t|$test]=$(stat_of median <<<"${RES[$t|$test]:-}")
	done
	VAL[$t|udp]=${UDP_PPS[$t]:-}
	VAL[$t|ping]=${PING_AVG[$t]:-}
	[[ $t == veth ]] && return 0
	VAL[$t|cpu]=$(fcalc "${CPU_TICKS[$t]:-0} / $CLK_TCK / (${CPU_WALL[$t]:-0} + 1e-9) * 100" %.0f)
	VAL[$t|rss_idle]=$(fcalc "${RSS_IDLE[$t]} / 1024" %.1f)
	VAL[$t|rss_peak]=$(fcalc "${RSS_PEAK[$t]} / 1024" %.1f)
}

tcp_cell() {
	local t=$1 test=$2 lo hi
	if [[ $PING_ONLY == 1 ]]; then
		echo "-"
	elif [[ -z ${VAL[$t|$test]} ]]; then
		echo "fail"
	elif ((REPS > 1)); then
		lo=$(stat_of min <<<"${RES[$t|$test]}")
		hi=$(stat_of max <<<"${RES[$t|$test]}")
		printf '%.2f (%.2f-%.2f)' "${VAL[$t|$test]}" "$lo" "$hi"
	else
		printf '%.2f' "${VAL[$t|$test]}"
	fi
}

row_for() {
	local t=$1 c
	printf '%s' "$(impl_label "$t")"
	for c in "${TESTS[@]}"; do printf '\t%s' "$(tcp_cell "$t" "$c")"; done
	if [[ -n ${VAL[$t|udp]} ]]; then
		printf '\t%s%s' "${VAL[$t|udp]}" "$([[ ${UDP_NOTE[$t]} == sender-limited* ]] && echo '*')"
	else
		printf '\t-'
	fi
	if [[ -n ${VAL[$t|ping]} ]]; then
		printf '\t%s (%s-%s)' "${PING_AVG[$t]}" "${PING_MIN[$t]}" "${PING_MAX[$t]}"
	else
		printf '\t-'
	fi
	if [[ $t == veth ]]; then
		printf '\tn/a\tn/a\n'
	else
		printf '\t%s\t%s / %s\n' "${VAL[$t|cpu]}" "${VAL[$t|rss_idle]}" "${VAL[$t|rss_peak]}"
	fi
}

# ferrowg / another build of it (the same cells, one ratio each).
ratio_base() {
	local c=$1 v b
	v=${VAL[ferrowg|$c]:-}
	b=${VAL[ferrowg-base|$c]:-}
	if [[ -z $b || -z $v ]] || awk -v b="$b" 'BEGIN { exit !(b == 0) }'; then
		echo "n/a"
	else
		fcalc "$v / $b" %.2fx
	fi
}

# ferrowg / best reference (max for throughput and pps, min for ping, CPU and RSS).
ratio() {
	local c=$1 best="" r v
	for r in "${UP[@]}"; do
		[[ $r == ferrowg || $r == ferrowg-ring || $r == ferrowg-base ]] && continue
		v=${VAL[$r|$c]:-}
		[[ -z $v ]] && continue
		if [[ -z $best ]]; then
			best=$v
		elif higher_is_better "$c"; then
			best=$(awk -v a="$best" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
		else
			best=$(awk -v a="$best" -v b="$v" 'BEGIN { print (b < a) ? b : a }')
		fi
	done
	v=${VAL[ferrowg|$c]:-}
	if [[ -z $best || -z $v ]] || awk -v b="$best" 'BEGIN { exit !(b == 0) }'; then
		echo "n/a"
	else
		fcalc "$v / $best" %.2fx
	fi
}

for t in "${TARGETS[@]}"; do compute_vals "$t"; done
TABLE=$BENCH_TMP/table.tsv
{
	printf 'implementation\tTCP 1-stream A->B Gbit/s\tTCP 1-stream B->A Gbit/s\tTCP 4-stream A->B Gbit/s\tTCP 4-stream B->A Gbit/s\tUDP pps at knee\tping avg (min-max) ms\tCPU %%\tRSS idle / peak MiB\n'
	for t in "${TARGETS[@]}"; do row_for "$t"; done
	if [[ " ${UP[*]} " == *" ferrowg "* ]]; then
		printf 'ferrowg / best reference'
		for c in "${TESTS[@]}" udp ping cpu; do printf '\t%s' "$(ratio "$c")"; done
		printf '\t%s / %s\n' "$(ratio rss_idle)" "$(ratio rss_peak)"
	fi
	if [[ " ${UP[*]} " == *" ferrowg "* && " ${UP[*]} " == *" ferrowg-base "* ]]; then
		printf 'ferrowg / ferrowg-base'
		for c in "${TESTS[@]}" udp ping cpu; do printf '\t%s' "$(ratio_base "$c")"; done
		printf '\t%s / %s\n' "$(ratio_base rss_idle)" "$(ratio_base rss_peak)"
	fi
} >"$TABLE"

REPORT=$BENCH_TMP/report.md
{
	echo "## Tunnel benchmark (bench/tunnel.sh)"
	echo
	echo "- Date: $DATE"
	echo "- Command: \`$CMDLINE\`"
	echo "- Settings: TCP $REPS run(s) x $SECS s per cell (median, and min-max when more than one run);" \
		"UDP steps of $UDP_SECS s with $UDP_LEN-byte payloads, offered rate doubling from $UDP_START Mbit/s, then" \
		"$UDP_BISECT bisection steps; knee = best delivered pps among runs with < $UDP_LOSS_MAX% loss, a rate being" \
		"lossy only if two runs in a row are; ping x$PING_COUNT at 10 ms; tunnel MTU $TUNNEL_MTU"
	machine_info
	echo "- Load averages (\`uptime\`), start: ${LOAD_START##*load average: }; end: ${LOAD_END##*load average: }." \
		"Other jobs were using the machine; treat differences under ~15 % as noise."
	impl_versions "${IMPLS[@]}"
	echo "  - $(wg --version 2>&1 | head -n 1); $(iperf3 --version | head -n 1); $(ping -V 2>&1 | head -n 1)"
	echo
	md_table <"$TABLE"
	echo
	echo "Columns are explained in bench/README.md. CPU % is both daemons (A and B) together during the" \
		"TCP tests; 100 = one core of $(nproc). RSS is the larger of the two daemons."
	echo
	[[ " ${UP[*]} " == *" ferrowg "* ]] ||
		echo "- No ferrowg row and no ratio row: ferrowg ${NOTE[ferrowg]:-was not in BENCH_IMPLS}."
	for impl in "${IMPLS[@]}"; do
		[[ $impl != ferrowg && -n ${NOTE[$impl]:-} ]] && echo "- $(impl_label "$impl"): ${NOTE[$impl]}"
	done
	if [[ " ${TARGETS[*]} " == *" veth "* ]]; then
		echo "- The bare-veth UDP figure is iperf3's own ceiling (one sending and one receiving thread; its" \
			"lost packets are RcvbufErrors on iperf3's socket in B), not the veth's."
	fi
	for t in "${TARGETS[@]}"; do
		[[ -n ${UDP_NOTE[$t]:-} ]] && echo "- $(impl_label "$t") UDP: ${UDP_NOTE[$t]} (marked *)"
	done
	((FAILED_RUNS == 0)) || echo "- $FAILED_RUNS iperf3 run(s) failed or timed out; they are left out of the medians."
	echo
	echo "### Details"
	echo
	echo "TCP runs (Gbit/s, in run order):"
	echo
	{
		printf 'implementation\ttest\truns'
		printf '\n'
		for t in "${TARGETS[@]}"; do
			for test in "${TESTS[@]}"; do
				printf '%s\t%s\t%s\n' "$(impl_label "$t")" "$(test_label "$test")" \
					"$(for v in ${RES[$t|$test]:-}; do printf '%.2f ' "$v"; done | sed 's/ $//')"
			done
		done
	} | md_table
	echo
	echo "CPU and drops during the TCP tests: CPU-seconds of both daemons per GB delivered, CPU of" \
		"each daemon pair while *other* targets were measured (should be ~0), and Udp RcvbufErrors" \
		"counted in each namespace, and how many of those were on the daemons' own UDP sockets" \
		"(the \`drops\` column of /proc/net/udp for the WireGuard port; for B->A tests the receiving daemon is in A):"
	echo
	{
		printf 'implementation\tCPU s per GB\tbackground CPU %%\tRcvbufErrors A\tRcvbufErrors B\tWG socket drops A\tWG socket drops B\n'
		for t in "${TARGETS[@]}"; do
			if [[ $t == veth ]]; then
				printf '%s\tn/a\tn/a' "$(impl_label "$t")"
			else
				printf '%s\t%s\t%s' "$(impl_label "$t")" \
					"$(fcalc "${CPU_TICKS[$t]:-0} / $CLK_TCK / (${BYTES[$t]:-0} / 1e9 + 1e-9)" %.2f)" \
					"$(fcalc "${BG_TICKS[$t]:-0} / $CLK_TCK / (${BG_WALL[$t]:-0} + 1e-9) * 100" %.1f)"
			fi
			if [[ $t == veth ]]; then
				printf '\t%s\t%s\tn/a\tn/a\n' "${TCP_RB_A[$t]:-0}" "${TCP_RB_B[$t]:-0}"
			else
				printf '\t%s\t%s\t%s\t%s\n' "${TCP_RB_A[$t]:-0}" "${TCP_RB_B[$t]:-0}" "${TCP_WGD_A[$t]:-0}" "${TCP_WGD_B[$t]:-0}"
			fi
		done
	} | md_table
	echo
	echo "UDP knee search, in run order (receiver: namespace B). RcvbufErrors B counts every UDP socket in" \
		"B (iperf3's and the daemon's); \"WG socket\" is the drop counter of the daemon's own socket(s);" \
		"tun A tx dropped = packets the kernel could not queue for daemon A (it did not read its TUN" \
		"fast enough); tun B rx dropped = packets daemon B wrote that the kernel dropped:"
	echo
	{
		printf 'implementation\toffered Mbit/s\tsent Mbit/s\tloss %%\tdelivered pps\tRcvbufErrors B\tWG socket drops B\ttun A tx dropped\ttun B rx dropped\tdaemons CPU %%\n'
		for t in "${TARGETS[@]}"; do
			while IFS=$'\t' read -r a b c d e f g h i; do
				[[ -n $a ]] || continue
				[[ $t == veth ]] && { f=n/a g=n/a h=n/a i=n/a; }
				printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(impl_label "$t")" "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h" "$i"
			done <<<"${UDP_STEPS[$t]:-}"
		done
	} | md_table
	echo
	echo "Ping, memory and the socket buffers each daemon asked for (\`ss -m\` rb/tb; the kernel doubles" \
		"the requested size, net.core.rmem_max = $(sysctl -n net.core.rmem_max) caps SO_RCVBUF but not SO_RCVBUFFORCE):"
	echo
	{
		printf 'implementation\tping min/avg/max/mdev ms\tping loss %%\tRSS idle A/B KiB\tprivate idle A/B KiB\tRSS peak (VmHWM) A/B KiB\tWG UDP socket rcvbuf/sndbuf bytes, A / B\n'
		for t in "${TARGETS[@]}"; do
			printf '%s\t%s/%s/%s/%s\t%s\t%s\t%s\t%s\t%s\n' "$(impl_label "$t")" "${PING_MIN[$t]:-}" "${PING_AVG[$t]:-}" \
				"${PING_MAX[$t]:-}" "${PING_MDEV[$t]:-}" "${PING_LOSS[$t]:-}" "${RSS_IDLE_AB[$t]:-n/a}" \
				"${PRIV_IDLE_AB[$t]:-n/a}" "${RSS_PEAK_AB[$t]:-n/a}" "${SOCKBUF[$t]:-n/a}"
		done
	} | md_table
	if ((${#STALE_SOCKETS[@]})); then
		echo
		echo "UAPI sockets left behind after SIGTERM (removed by the script): ${STALE_SOCKETS[*]}"
	fi
} >"$REPORT"

echo
md_table <"$TABLE"
echo
if [[ -n $RESULTS ]]; then
	write_section "$RESULTS" tunnel "$REPORT"
	log "wrote $RESULTS"
else
	log "quick mode: RESULTS.md not written (set BENCH_RESULTS=path to keep the report)"
fi
