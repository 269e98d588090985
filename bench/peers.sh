#!/usr/bin/env bash
# bench/peers.sh — peer-scale benchmark (issue #4).
#
# For every installed implementation and every size in PEERS_SIZES (default 1,000, 10,000 and
# 100,000), starts a fresh pair of daemons in two namespaces this script creates (topology: see
# bench/lib.sh), and applies to side A, with the stock `wg setconf` over the UAPI socket, a
# configuration of N generated peers (random 32-byte public keys, /32 allowed IPs from
# 10.100.0.0/15) plus one real peer, B. Measures:
#   - the time `wg setconf` takes (bounded by PEERS_APPLY_TIMEOUT, default 300 s; a timeout is
#     reported, not fatal),
#   - that all peers arrived (`wg show IFACE peers`, also timed: the UAPI get of N peers),
#   - RSS of daemon A before and after, and the resulting bytes per peer,
#   - daemon A's idle CPU with N peers (timers walking the peer table),
#   - iperf3 TCP, 1 stream, PEERS_IPERF_SECONDS (5 s) to the one real peer among them.
# wireguard-go refuses more than 65,536 peers (device.MaxPeers); larger sizes are skipped for
# it and the table says so. Writes its section of bench/RESULTS.md. Needs root.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CMDLINE=$(command_line "$@")
[[ $# -eq 0 ]] || die "no arguments; configure with environment variables (see bench/README.md)"

read -r -a SIZES <<<"${PEERS_SIZES:-1000 10000 100000}"
APPLY_TIMEOUT=${PEERS_APPLY_TIMEOUT:-300}
IPERF_SECS=${PEERS_IPERF_SECONDS:-5}
IDLE_SECS=${PEERS_IDLE_SECONDS:-5}
RESULTS=${BENCH_RESULTS-$BENCH_DIR/RESULTS.md}
read -r -a IMPLS <<<"${BENCH_IMPLS:-${PEER_IMPLS[*]}}"
WGGO_MAX_PEERS=65536

declare -A NOTE VERSION

# gen_peers N FILE: N [Peer] sections with random public keys and /32s from 10.100.0.0/15.
gen_peers() {
	python3 - "$1" "$2" <<'EOF'
import base64, os, sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    for i in range(1, n + 1):
        key = base64.b64encode(os.urandom(32)).decode()
        f.write(f"[Peer]\nPublicKey = {key}\nAllowedIPs = 10.{100 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32\n\n")
EOF
}

# row FIELDS...: one tab-separated result row.
row() {
	local IFS=$'\t'
	echo "$*" >>"$ROWS"
}

# run_case IMPL N IDX: one fresh daemon pair, N + 1 peers on A.
run_case() {
	local impl=$1 n=$2 idx=$3 k tag port ifa ifb pa pb conf t0 t1 rc apply fixed per_peer listed tget rss0 rss1 hwm
	local tk0 tk1 idle gbps out
	k=$(impl_slot "$impl")
	tag=$(impl_tag "$impl")
	port=$((51820 + k))
	ifa=fp${tag}${idx}a$$
	ifb=fp${tag}${idx}b$$
	if ! start_daemon "$impl" "$NS_A" "$ifa" "$BENCH_TMP/$impl-$n-a.log"; then
		row "$(impl_label "$impl")" "$n" "daemon did not start" - - - - - - - -
		return 0
	fi
	pa=$DAEMON_PID
	if ! start_daemon "$impl" "$NS_B" "$ifb" "$BENCH_TMP/$impl-$n-b.log"; then
		stop_daemon "$pa" "$ifa"
		row "$(impl_label "$impl")" "$n" "daemon did not start" - - - - - - - -
		return 0
	fi
	pb=$DAEMON_PID

	write_wg_conf "$BENCH_TMP/b.conf" "$KEY_B" "$port" "$PUB_A" "10.241.$k.1/32" "$UNDER_A:$port"
	configure_iface "$NS_B" "$ifb" "$BENCH_TMP/b.conf" "10.241.$k.2/24" || log "$impl: configuring B failed"
	ip -n "$NS_A" addr add "10.241.$k.1/24" dev "$ifa"
	ip -n "$NS_A" link set "$ifa" mtu "$TUNNEL_MTU" up

	conf=$BENCH_TMP/a-$n.conf
	{
		printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n\n' "$KEY_A" "$port"
		head -n $((4 * n)) "$BENCH_TMP/peers.conf"
		printf '[Peer]\nPublicKey = %s\nAllowedIPs = 10.241.%s.2/32\nEndpoint = %s:%s\n' "$PUB_B" "$k" "$UNDER_B" "$port"
	} >"$conf"

	# The fixed cost of one `wg setconf` (tool start-up, namespace, UAPI round trip): the same
	# command with the real peer alone, just before; the fastest of three.
	write_wg_conf "$BENCH_TMP/a-1.conf" "$KEY_A" "$port" "$PUB_B" "10.241.$k.2/32" "$UNDER_B:$port"
	sleep 0.5
	fixed=""
	for _ in 1 2 3; do
		t0=$(now)
		timeout 60 ip netns exec "$NS_A" wg setconf "$ifa" "$BENCH_TMP/a-1.conf" 2>/dev/null || true
		t1=$(fcalc "$(now) - $t0" %.3f)
		[[ -z $fixed ]] || (($(fcalc "$t1 < $fixed" %d))) && fixed=$t1
	done
	rss0=$(proc_status_kib "$pa" VmRSS)
	log "$impl: applying $n + 1 peers (timeout ${APPLY_TIMEOUT}s; 1 peer took $fixed s)"
	t0=$(now)
	rc=0
	timeout "$APPLY_TIMEOUT" ip netns exec "$NS_A" wg setconf "$ifa" "$conf" 2>"$BENCH_TMP/setconf.err" || rc=$?
	t1=$(now)
	apply=$(fcalc "$t1 - $t0" %.3f)
	per_peer=$(fcalc "($t1 - $t0 - $fixed) / $n * 1000000" %.2f)
	if ((rc == 124)); then
		log "$impl: wg setconf with $n peers timed out after ${APPLY_TIMEOUT}s"
		row "$(impl_label "$impl")" "$n" "timeout (> ${APPLY_TIMEOUT} s)" - - - "$(fcalc "$rss0 / 1024" %.1f)" \
			"$(fcalc "$(proc_status_kib "$pa" VmRSS) / 1024" %.1f)" - - -
		stop_daemon "$pa" "$ifa"
		stop_daemon "$pb" "$ifb"
		return 0
	elif ((rc != 0)); then
		log "$impl: wg setconf with $n peers failed (exit $rc): $(head -c 300 "$BENCH_TMP/setconf.err")"
		apply="failed after $apply s: $(head -n 1 "$BENCH_TMP/setconf.err" | cut -c1-60)"
	fi

	t0=$(now)
	listed=$(timeout 120 ip netns exec "$NS_A" wg show "$ifa" peers | wc -l || true)
	tget=$(fcalc "$(now) - $t0" %.2f)

	wait_handshake "10.241.$k.2" || log "$impl: no reply from the real peer among $n"
	sleep 1
	rss1=$(proc_status_kib "$pa" VmRSS)
	hwm=$(proc_status_kib "$pa" VmHWM)
	tk0=$(cpu_ticks "$pa")
	t0=$(now)
	sleep "$IDLE_SECS"
	tk1=$(cpu_ticks "$pa")
	idle=$(fcalc "($tk1 - $tk0) / $CLK_TCK / ($(now) - $t0) * 100" %.1f)

	out=$BENCH_TMP/iperf-$impl-$n.json
	if iperf_client "$out" "$IPERF_SECS" -c "10.241.$k.2"; then
		gbps=$(jq -r '.end.sum_received.bits_per_second / 1e9' "$out" | xargs printf '%.2f')
	else
		gbps=failed
	fi
	log "$(printf '%-14s %6d peers: apply %s s, %s listed (get %s s), RSS %s -> %s KiB (HWM %s), idle CPU %s%%, iperf3 %s Gbit/s' \
		"$impl" "$n" "$apply" "$listed" "$tget" "$rss0" "$rss1" "$hwm" "$idle" "$gbps")"
	row "$(impl_label "$impl")" "$n" "$apply" "$per_peer" "$listed" "$tget" "$(fcalc "$rss0 / 1024" %.1f)" \
		"$(fcalc "$rss1 / 1024" %.1f) (peak $(fcalc "$hwm / 1024" %.1f))" \
		"$(fcalc "($rss1 - $rss0) * 1024 / $n" %.0f)" "$idle" "$gbps"
	stop_daemon "$pa" "$ifa"
	stop_daemon "$pb" "$ifb"
}

bench_init
command -v python3 >/dev/null || die "missing tool: python3 (generates the peer keys)"
LOAD_START=$(uptime)
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
log "peer-scale benchmark: sizes ${SIZES[*]}, apply timeout ${APPLY_TIMEOUT}s; load: ${LOAD_START##*load average: }"
ROWS=$BENCH_TMP/rows.tsv
: >"$ROWS"

bench_topology fwp
MAX_N=0
for n in "${SIZES[@]}"; do ((n > MAX_N)) && MAX_N=$n; done
log "generating $MAX_N random peers"
gen_peers "$MAX_N" "$BENCH_TMP/peers.conf"

for impl in "${IMPLS[@]}"; do
	impl_check "$impl" || continue
	idx=0
	for n in "${SIZES[@]}"; do
		idx=$((idx + 1))
		if [[ $impl == wireguard-go ]] && ((n + 1 > WGGO_MAX_PEERS)); then
			log "wireguard-go: skipping $n peers (it accepts at most $WGGO_MAX_PEERS)"
			row "$(impl_label "$impl")" "$n" "skipped (max 65,536 peers)" - - - - - - - -
			continue
		fi
		run_case "$impl" "$n" "$idx"
	done
done
LOAD_END=$(uptime)

TABLE=$BENCH_TMP/table.tsv
{
	printf 'implementation\tpeers\tapply s\tµs/peer\tpeers listed\t`wg show` s\tRSS before MiB\tRSS after MiB\tbytes/peer\tidle CPU %%\tiperf3 1-stream Gbit/s\n'
	cat "$ROWS"
} >"$TABLE"

REPORT=$BENCH_TMP/report.md
{
	echo "## Peer-scale benchmark (bench/peers.sh)"
	echo
	echo "- Date: $DATE"
	echo "- Command: \`$CMDLINE\`"
	echo "- Settings: N generated peers + 1 real peer applied with \`wg setconf\` (timeout $APPLY_TIMEOUT s)" \
		"to a fresh daemon; idle CPU over $IDLE_SECS s; iperf3 TCP 1 stream, $IPERF_SECS s, to the real peer"
	machine_info
	echo "- Load averages (\`uptime\`), start: ${LOAD_START##*load average: }; end: ${LOAD_END##*load average: }."
	impl_versions "${IMPLS[@]}"
	echo "  - $(wg --version 2>&1 | head -n 1)"
	echo
	md_table <"$TABLE"
	echo
	echo "µs/peer = (apply - the fastest of three runs of the same \`wg setconf\` with the real peer alone, just before) / N: the" \
		"cost of each peer with the fixed cost of a \`wg\` run taken out, which is how linear scaling shows."
	echo "\"peers listed\" counts \`wg show IFACE peers\` (N + 1 expected); \"RSS after\" is daemon A after the" \
		"apply and a handshake with the real peer; bytes/peer = (RSS after - RSS before) / N."
	[[ -n ${NOTE[ferrowg]:-} ]] && echo "No ferrowg rows: ferrowg ${NOTE[ferrowg]}."
	if ((${#STALE_SOCKETS[@]})); then
		echo
		echo "UAPI sockets left behind after SIGTERM (removed by the script): ${STALE_SOCKETS[*]}"
	fi
	true
} >"$REPORT"

echo
md_table <"$TABLE"
echo
if [[ -n $RESULTS ]]; then
	write_section "$RESULTS" peers "$REPORT"
	log "wrote $RESULTS"
fi
