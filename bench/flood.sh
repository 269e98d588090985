#!/usr/bin/env bash
# bench/flood.sh — handshake floods against a ferrowg daemon with a live tunnel (issue #17,
# items 1 and 2).
#
# For each ferrowg build (ferrowg, and ferrowg-base when FERROWG_BASE names one) and each kind
# of static key (a key given inline as a file key would be, and an X25519 key in a SoftHSM2
# token created here), one ferrowg daemon in NS_A keeps a tunnel to wireguard-go in NS_B, and
# for each flood mode (none = the baseline, valid-mac1, junk) the script measures, in one run:
#   - ping loss and RTT through the tunnel (FLOOD_PING_COUNT pings at 10 ms, A -> B),
#   - iperf3 TCP through the tunnel for FLOOD_IPERF_SECONDS (B -> A by default: the data enters
#     ferrowg through the UDP socket the flood arrives on),
#   - a legitimate peer (wg-flood legit, a peer of the daemon) that handshakes 1 s into the
#     pings: its time from first initiation to session, and whether it got a cookie reply
#     (which it answers at once),
#   - the daemon's CPU (utime+stime from /proc/PID/stat) over the ping phase and over the
#     whole flood, its largest RSS (VmRSS sampled every 0.2 s) and the drops on its UDP socket,
# while wg-flood in NS_C sends FLOOD_RATE initiations per second (valid mac1 for the daemon's
# key, or random mac1) from FLOOD_SOURCES source ports. Prints one markdown table (and writes
# it to FLOOD_RESULTS when set). See bench/README.md.
#
# Topology (names carry $$; the UDP port is 5182K, K = the build's slot in lib.sh):
#
#   +------------- NS_C -------------+        +------------------ NS_A -------------------+
#   | wg-flood  192.168.242.2        |<-veth->| 192.168.242.1        ferrowg daemon       |
#   | legit     192.168.242.3        |        | 10.241.K.1/24 (tunnel)                    |
#   +--------------------------------+        | 192.168.241.1                             |
#                                             +---------------------|---------------------+
#                                                                  veth
#                                             +---------------------|---------------------+
#                                             | 192.168.241.2  wireguard-go 10.241.K.2/24 |
#                                             | iperf3 server                  NS_B       |
#                                             +-------------------------------------------+
#
# Needs root, wireguard-go, wg, iperf3, softhsm2-util (SoftHSM2) and the release builds of
# ferrowg and wg-flood (`cargo build --release -p ferrowg -p ferrowg-flood`). Everything
# created is removed on exit (lib.sh's trap).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CMDLINE=$(command_line "$@")
[[ $# -eq 0 ]] || die "no arguments; configure with environment variables (see bench/README.md)"

# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------
RATE=${FLOOD_RATE:-20000}                  # initiations per second
SOURCES=${FLOOD_SOURCES:-4}                # source ports of the flood
PING_COUNT=${FLOOD_PING_COUNT:-500}        # pings at 10 ms per case
IPERF_SECS=${FLOOD_IPERF_SECONDS:-10}      # TCP test per case
IPERF_DIR=${FLOOD_IPERF_DIR:-ba}           # ba = B -> A (into ferrowg), ab = A -> B
LEGIT_TIMEOUT=${FLOOD_LEGIT_TIMEOUT:-10}    # seconds the legitimate peer waits for its session
read -r -a KEYS <<<"${FLOOD_KEYS:-file softhsm}"
# A mode may name its own rate: valid-mac1@1000 floods at 1,000/s (below the 1,024 valid mac1s
# per second that put today's daemon under load: every one of them costs a DH).
read -r -a MODES <<<"${FLOOD_MODES:-none valid-mac1 junk valid-mac1@1000}"
RESULTS=${FLOOD_RESULTS:-}                  # a file to write the report section to; empty = none
CHECK=${FLOOD_CHECK:-0}                     # 1 = exit 1 when a flood case misses issue #17's bounds
WG_FLOOD=${WG_FLOOD:+$(realpath -ms -- "$WG_FLOOD")}
WG_FLOOD=${WG_FLOOD:-$REPO_DIR/target/release/wg-flood}
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
IMPLS=(ferrowg)
[[ -n $FERROWG_BASE ]] && IMPLS+=(ferrowg-base)

# Issue #17's bounds for a flood case.
MAX_LOSS_PCT=1
MAX_LEGIT_MS=2000

UNDER_C=192.168.242.2   # flood source
LEGIT_C=192.168.242.3   # legitimate peer
UNDER_AC=192.168.242.1  # the daemon, as NS_C reaches it
# Seconds between the flood's start and the first ping (0: the pings also see how the daemon
# takes the flood's first second); the legitimate peer starts LEGIT_AFTER s into the pings.
WARMUP=${FLOOD_WARMUP:-0}
LEGIT_AFTER=1

for v in RATE SOURCES PING_COUNT IPERF_SECS LEGIT_TIMEOUT; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer (got '${!v}')"
done
((RATE <= 2000000 && PING_COUNT <= 100000 && IPERF_SECS <= 600 && LEGIT_TIMEOUT <= 60)) ||
	die "settings out of bounds (rate <= 2e6, pings <= 1e5, iperf <= 600 s, legit timeout <= 60 s)"
[[ $IPERF_DIR == ab || $IPERF_DIR == ba ]] || die "FLOOD_IPERF_DIR must be ab or ba"
for m in "${MODES[@]}"; do
	[[ $m =~ ^(none|valid-mac1(@[0-9]+)?|junk(@[0-9]+)?)$ ]] || die "unknown flood mode $m (none, valid-mac1[@RATE], junk[@RATE])"
done
[[ $WARMUP =~ ^[0-9]+$ && $WARMUP -le 60 ]] || die "FLOOD_WARMUP must be 0..60 seconds"
for k in "${KEYS[@]}"; do [[ $k =~ ^(file|softhsm)$ ]] || die "unknown key kind $k"; done

declare -A NOTE VERSION
ROWS=() # one TSV line per case
CHECK_FAILS=()

# ---------------------------------------------------------------------------------------------
# Set-up: the third namespace, the token, the legitimate peer's key
# ---------------------------------------------------------------------------------------------

# NS_C joined to NS_A by a second veth pair.
setup_flood_ns() {
	NS_C=fflC$$
	local va=fflac$$ vc=fflca$$
	ip netns add "$NS_C"
	BENCH_NETNS+=("$NS_C")
	link_veth "$NS_C" "$vc" "$UNDER_C" "$NS_A" "$va" "$UNDER_AC"
	ip -n "$NS_C" addr add "$LEGIT_C/24" dev "$vc"
}

# A SoftHSM2 token of our own (its store under BENCH_TMP) with an X25519 key made by
# `ferrowg genkey --pkcs11`; sets TOKEN_URI and TOKEN_PUB. SOFTHSM2_CONF is exported, so the
# daemons started afterwards find the token.
setup_token() {
	local label=ffl$$ dir=$BENCH_TMP/softhsm
	command -v softhsm2-util >/dev/null || die "missing tool: softhsm2-util (apt-get install softhsm2)"
	[[ -f $SOFTHSM_MODULE ]] || die "SoftHSM2 module not found: $SOFTHSM_MODULE"
	mkdir -p "$dir/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir/tokens" >"$dir/softhsm2.conf"
	export SOFTHSM2_CONF=$dir/softhsm2.conf
	timeout 30 softhsm2-util --init-token --free --label "$label" --so-pin 5678 --pin 1234 >/dev/null ||
		die "softhsm2-util --init-token failed"
	(umask 077 && printf '1234\n' >"$dir/pin")
	TOKEN_URI="pkcs11:token=$label;object=wg?module-path=$SOFTHSM_MODULE&pin-source=file:$dir/pin"
	TOKEN_PUB=$(timeout 30 "$FERROWG" genkey --pkcs11 "$TOKEN_URI") || die "ferrowg genkey --pkcs11 failed"
	log "SoftHSM2 token $label: X25519 key with public key $TOKEN_PUB"
}

# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------

# rss_sampler PID OUT: the largest VmRSS (KiB) of PID, sampled every 0.2 s, kept in OUT until
# killed (bounded: at most one hour).
rss_sampler() {
	local pid=$1 out=$2 max=0 v i
	for ((i = 0; i < 18000; i++)); do
		v=$(proc_status_kib "$pid" VmRSS)
		((${v:-0} > max)) && {
			max=$v
			echo "$max" >"$out"
		}
		sleep 0.2
	done
}

# ping_run COUNT DST: "sent received loss% avg max" of COUNT pings at 10 ms from NS_A.
ping_run() {
	local out
	out=$(timeout $((PING_COUNT / 50 + 30)) ip netns exec "$NS_A" ping -n -q -c "$1" -i 0.01 -W 1 "$2" 2>&1 || true)
	awk '
		/packets transmitted/ { s = $1; r = $4 }
		/^rtt|^round-trip/ { split($4, v, "/"); avg = v[2]; max = v[3] }
		END { if (s == "") print "0 0 100 - -"; else printf "%d %d %.2f %s %s\n", s, r, (s - r) * 100 / s, (avg == "" ? "-" : avg), (max == "" ? "-" : max) }' <<<"$out"
}

# kv FILE KEY: the value of KEY=... in wg-flood's output line.
kv() { grep -oE "(^| )$2=[^ ]*" "$1" 2>/dev/null | head -n 1 | cut -d= -f2 || true; }

# run_case IMPL KEYKIND MODE[@RATE] PID DST PORT TUN_PUB: one baseline or flood case; appends a
# row.
run_case() {
	local impl=$1 kind=$2 spec=$3 pid=$4 dst=$5 port=$6 pub=$7
	local mode=${3%@*} rate=$RATE main=1
	[[ $spec == *@* ]] && rate=${spec#*@} main=0
	local tag=$impl-$kind-${spec/@/-} flood_pid="" legit_pid sampler_pid ping tk0 tk1 tp0 tp1 tw0 tw1
	local fl_secs drops0 drops1 gbps rss0 tk_ping out=$BENCH_TMP/$tag
	# Whatever load the previous case left (ferrowg stays under load for 1 s) is over.
	sleep 2
	rss0=$(proc_status_kib "$pid" VmRSS)
	echo "$rss0" >"$out.rssmax"
	rss_sampler "$pid" "$out.rssmax" &
	sampler_pid=$!
	BENCH_PIDS+=("$sampler_pid")
	drops0=$(udp_port_drops "$NS_A" "$port")
	tw0=$(now)
	tk0=$(cpu_ticks "$pid")
	if [[ $mode != none ]]; then
		# Stopped through the stop file after the TCP test; the duration is only the bound
		# (the pings, with every reply late, and the TCP test with its time-outs).
		fl_secs=$((WARMUP + LEGIT_TIMEOUT + PING_COUNT * 3 / 100 + IPERF_SECS + 90))
		rm -f "$out.stop"
		timeout $((fl_secs + 30)) ip netns exec "$NS_C" "$WG_FLOOD" "$mode" --target "$UNDER_AC:$port" \
			--target-key "$pub" --rate "$rate" --duration "$fl_secs" --bind "$UNDER_C" \
			--src-port 40000 --sources "$SOURCES" --stop-file "$out.stop" >"$out.flood" 2>"$out.flood.err" &
		flood_pid=$!
		BENCH_PIDS+=("$flood_pid")
		sleep "$WARMUP"
	fi
	log "$tag: $PING_COUNT pings at 10 ms; legitimate peer after ${LEGIT_AFTER} s"
	(
		sleep "$LEGIT_AFTER"
		exec timeout $((LEGIT_TIMEOUT + 10)) ip netns exec "$NS_C" "$WG_FLOOD" legit --target "$UNDER_AC:$port" \
			--target-key "$pub" --key-file "$BENCH_TMP/legit.key" --bind "$LEGIT_C" --timeout "$LEGIT_TIMEOUT"
	) >"$out.legit" 2>"$out.legit.err" &
	legit_pid=$!
	BENCH_PIDS+=("$legit_pid")
	tp0=$(now)
	tk1=$(cpu_ticks "$pid")
	read -r -a ping <<<"$(ping_run "$PING_COUNT" "$dst")"
	tp1=$(now)
	tk_ping=$(($(cpu_ticks "$pid") - tk1))
	wait "$legit_pid" 2>/dev/null || true
	log "$tag: iperf3 TCP $IPERF_DIR for $IPERF_SECS s"
	local args=(-c "$dst")
	[[ $IPERF_DIR == ba ]] && args+=(-R)
	if iperf_client "$out.iperf.json" "$IPERF_SECS" "${args[@]}"; then
		gbps=$(jq -r '.end.sum_received.bits_per_second / 1e9' "$out.iperf.json" | xargs printf '%.2f')
	else
		gbps=failed
	fi
	if [[ -n $flood_pid ]]; then
		touch "$out.stop"
		wait "$flood_pid" 2>/dev/null || log "$tag: wg-flood failed: $(tail -c 300 "$out.flood.err")"
	fi
	tw1=$(now)
	tk1=$(cpu_ticks "$pid")
	kill "$sampler_pid" 2>/dev/null || true
	wait "$sampler_pid" 2>/dev/null || true
	drops1=$(udp_port_drops "$NS_A" "$port")
	kill -0 "$pid" 2>/dev/null || log "$tag: the daemon is gone"

	local fl_rate=- fl_cookies=- legit_ms legit_cookie cpu_ping cpu_all rssmax verdict=""
	if [[ $mode != none ]]; then
		fl_rate=$(kv "$out.flood" rate)
		fl_cookies=$(kv "$out.flood" cookie_replies)
		[[ -n $fl_rate ]] || fl_rate=failed
	fi
	if [[ $(kv "$out.legit" handshake) == ok ]]; then
		legit_ms=$(kv "$out.legit" total_ms)
	else
		legit_ms="timeout (> ${LEGIT_TIMEOUT} s)"
		[[ -s $out.legit.err ]] && log "$tag: legit: $(tail -c 300 "$out.legit.err")"
	fi
	legit_cookie=$(kv "$out.legit" cookie)
	cpu_ping=$(fcalc "$tk_ping / $CLK_TCK / ($tp1 - $tp0) * 100" %.0f)
	cpu_all=$(fcalc "($tk1 - $tk0) / $CLK_TCK / ($tw1 - $tw0) * 100" %.0f)
	rssmax=$(cat "$out.rssmax" 2>/dev/null || echo 0)
	if [[ $mode != none ]]; then
		(($(fcalc "(${ping[2]} > $MAX_LOSS_PCT)" %d))) && verdict+="loss > ${MAX_LOSS_PCT} %; "
		if [[ $legit_ms == timeout* ]] || (($(fcalc "($legit_ms > $MAX_LEGIT_MS)" %d))); then
			verdict+="legit > $((MAX_LEGIT_MS / 1000)) s; "
		fi
		# Cookies are expected at the main rate only (a queue-based daemon need not send any
		# at 1,000/s).
		((main)) && [[ $mode == valid-mac1 && $legit_cookie != yes ]] && verdict+="no cookie; "
		[[ $mode == junk && $legit_cookie == yes ]] && verdict+="junk forced cookies; "
		[[ $fl_rate == failed ]] || (($(fcalc "($fl_rate < $rate * 0.95)" %d))) && verdict+="flood < rate; "
		verdict=${verdict%; }
		[[ -n $verdict ]] && CHECK_FAILS+=("$impl/$kind/$mode: $verdict")
		verdict=${verdict:-ok}
	else
		verdict=baseline
	fi
	log "$tag: flood $fl_rate/s, ping loss ${ping[2]}% (avg ${ping[3]} max ${ping[4]} ms), TCP $gbps Gbit/s," \
		"legit $legit_ms ms cookie=$legit_cookie, CPU ping $cpu_ping% all $cpu_all%, RSS max $rssmax KiB," \
		"socket drops $((drops1 - drops0)), cookies to flood $fl_cookies: $verdict"
	ROWS+=("$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' \
		"$(impl_label "$impl")" "$kind" "${spec/@/ @ }" "$fl_rate" "${ping[2]} (${ping[1]}/${ping[0]})" \
		"${ping[3]} / ${ping[4]}" "$gbps" "$legit_ms" "${legit_cookie:--}" "$cpu_ping" "$cpu_all" \
		"$(fcalc "$rss0 / 1024" %.1f) / $(fcalc "$rssmax / 1024" %.1f)" "$((drops1 - drops0))" \
		"$fl_cookies" "$verdict")")
}

# run_impl_key IMPL KEYKIND: a daemon pair with that key, then every mode.
run_impl_key() {
	local impl=$1 kind=$2 k tag port ifa ifb pa pb pub conf
	k=$(impl_slot "$impl")
	tag=$(impl_tag "$impl")
	port=$((51820 + k))
	ifa=fl${tag}${kind:0:1}a$$
	ifb=fl${tag}${kind:0:1}b$$
	start_daemon "$impl" "$NS_A" "$ifa" "$BENCH_TMP/$impl-$kind-a.log" || {
		NOTE[$impl/$kind]="daemon did not start"
		return 0
	}
	pa=$DAEMON_PID
	start_daemon wireguard-go "$NS_B" "$ifb" "$BENCH_TMP/$impl-$kind-b.log" || die "wireguard-go did not start"
	pb=$DAEMON_PID
	conf=$BENCH_TMP/$impl-$kind-a.conf
	if [[ $kind == file ]]; then
		pub=$PUB_A
		write_wg_conf "$conf" "$KEY_A" "$port" "$PUB_B" "10.241.$k.2/32" "$UNDER_B:$port"
	else
		pub=$TOKEN_PUB
		printf '[Interface]\nListenPort = %s\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.241.%s.2/32\nEndpoint = %s:%s\n' \
			"$port" "$PUB_B" "$k" "$UNDER_B" "$port" >"$conf"
	fi
	printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.242.0.3/32\n' "$PUB_L" >>"$conf"
	configure_iface "$NS_A" "$ifa" "$conf" "10.241.$k.1/24" || die "$impl: configuring A failed"
	if [[ $kind == softhsm ]]; then
		timeout 30 ip netns exec "$NS_A" "$(impl_bin "$impl")" set "$ifa" private-key "$TOKEN_URI" ||
			die "$impl: setting the token key failed"
	fi
	write_wg_conf "$BENCH_TMP/$impl-$kind-b.conf" "$KEY_B" "$port" "$pub" "10.241.$k.1/32" "$UNDER_A:$port"
	configure_iface "$NS_B" "$ifb" "$BENCH_TMP/$impl-$kind-b.conf" "10.241.$k.2/24" || die "configuring B failed"
	if ! wait_handshake "10.241.$k.2"; then
		NOTE[$impl/$kind]="no ping reply through the tunnel after 10 s"
		log "$impl/$kind: ${NOTE[$impl/$kind]}; log: $(tail -n 5 "$BENCH_TMP/$impl-$kind-a.log")"
	else
		for mode in "${MODES[@]}"; do
			run_case "$impl" "$kind" "$mode" "$pa" "10.241.$k.2" "$port" "$pub"
		done
	fi
	stop_daemon "$pa" "$ifa"
	stop_daemon "$pb" "$ifb"
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
bench_init
[[ -x $WG_FLOOD ]] || die "$WG_FLOOD not found: cargo build --release -p ferrowg-flood (or set WG_FLOOD)"
[[ -x $WIREGUARD_GO ]] || die "wireguard-go not found ($WIREGUARD_GO)"
LOAD_START=$(uptime)
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
log "flood benchmark: ${IMPLS[*]}, keys ${KEYS[*]}, modes ${MODES[*]}, $RATE initiations/s from $SOURCES ports"
bench_topology ffl
setup_flood_ns
(umask 077 && wg genkey >"$BENCH_TMP/legit.key")
PUB_L=$(wg pubkey <"$BENCH_TMP/legit.key")
[[ " ${KEYS[*]} " == *" softhsm "* ]] && setup_token
for impl in "${IMPLS[@]}" wireguard-go; do impl_check "$impl" || true; done
for kind in "${KEYS[@]}"; do
	for impl in "${IMPLS[@]}"; do
		if [[ -z ${VERSION[$impl]:-} ]]; then
			NOTE[$impl/$kind]=${NOTE[$impl]:-not run}
			continue
		fi
		run_impl_key "$impl" "$kind"
	done
done
LOAD_END=$(uptime)

TABLE=$BENCH_TMP/table.tsv
{
	printf 'implementation\tkey\tflood\tflood sent/s\tping loss %% (recv/sent)\tping avg / max ms\tTCP %s Gbit/s\tlegit handshake ms\tvia cookie\tdaemon CPU %% (pings)\tdaemon CPU %% (whole case)\tdaemon RSS before / max MiB\tUDP socket drops\tcookie replies to flood\t#17 bounds\n' \
		"$([[ $IPERF_DIR == ba ]] && echo 'B->A' || echo 'A->B')"
	printf '%s\n' "${ROWS[@]}"
} >"$TABLE"

REPORT=$BENCH_TMP/report.md
{
	echo "## Handshake floods (bench/flood.sh)"
	echo
	echo "- Date: $DATE"
	echo "- Command: \`$CMDLINE\`"
	echo "- Settings: $RATE initiations/s unless the mode says otherwise (mode @ rate; wg-flood, $SOURCES source" \
		"ports, batches every 1 ms) from a third namespace, starting $WARMUP s before the pings; per case $PING_COUNT pings at 10 ms A->B, then iperf3 TCP $IPERF_DIR for $IPERF_SECS s" \
		"(the flood runs through both); the legitimate peer handshakes ${LEGIT_AFTER} s into the pings and" \
		"answers a cookie reply at once; the peer in B is wireguard-go; tunnel MTU $TUNNEL_MTU"
	machine_info
	echo "- Load averages (\`uptime\`), start: ${LOAD_START##*load average: }; end: ${LOAD_END##*load average: }"
	impl_versions "${IMPLS[@]}" wireguard-go
	echo "  - $(wg --version 2>&1 | head -n 1); $(iperf3 --version | head -n 1); $(softhsm2-util --version 2>/dev/null | sed 's/^/SoftHSM /' || true)"
	echo
	md_table <"$TABLE"
	echo
	echo "Columns: flood sent/s = initiations the kernel accepted per second (wg-flood's own count);" \
		"CPU % = utime+stime of the ferrowg daemon (all threads) over the pings, and over the whole case" \
		"(pings + TCP test), 100 = one core of $(nproc); RSS max = largest VmRSS sampled every 0.2 s during" \
		"the case; UDP socket drops = the daemon socket's \`drops\` in /proc/net/udp over the case;" \
		"cookie replies to flood = what wg-flood received. #17 bounds: ping loss <= ${MAX_LOSS_PCT} %, the" \
		"legitimate handshake <= $((MAX_LEGIT_MS / 1000)) s (through a cookie when the flood has valid mac1s," \
		"without one under junk), the flood at >= 95 % of its rate."
	for key in "${!NOTE[@]}"; do
		[[ $key == */* ]] && echo "- $key: ${NOTE[$key]}"
	done
	if ((${#STALE_SOCKETS[@]})); then
		echo
		echo "UAPI sockets left behind after SIGTERM (removed by the script): ${STALE_SOCKETS[*]}"
	fi
} >"$REPORT"

echo
cat "$REPORT"
if [[ -n $RESULTS ]]; then
	write_section "$RESULTS" flood "$REPORT"
	log "wrote $RESULTS"
fi
if ((${#CHECK_FAILS[@]})); then
	log "cases outside issue #17's bounds: ${CHECK_FAILS[*]}"
	((CHECK == 1)) && exit 1
fi
exit 0
