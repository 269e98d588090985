#!/usr/bin/env bash
# bench/hub.sh — the fleet hub's costs, measured in one run (issue #18):
#
#   1. device-to-device TCP throughput through the hub (A -> hub -> B, decrypted, checked
#      against the policy and the flow table, encrypted again in the hub's process) against the
#      same two devices talking directly (a ferrowg tunnel A <-> B), interleaved, ROUNDS times
#      each; medians, and the hub's CPU during the runs through it;
#   2. enrolments per second: N `ferrowg enroll --no-up` runs (each: a new key, the TLS
#      handshake with the pinned API, one store transaction) with 1 and with 4 at a time;
#   3. handshakes per second the hub sustains: `wg-flood storm`, STORM_PEERS admitted peers
#      (real keys) in device A's namespace on STORM_SOURCES addresses, handshaking again as soon
#      as each session is up (and 35 ms have passed), cookies answered, for BENCH_SECONDS; the
#      hub's CPU and the load generator's meanwhile. Under load the hub limits handshakes per
#      source address (as the kernel does), so the figure depends on STORM_SOURCES.
#
#   NS_HUB: hub, bridge 10.99.K.1/24 ---- NS_A: device a (10.99.K.11), NS_B: device b (10.99.K.12)
#   hub pool 10.64.0.0/16; direct tunnel 10.250.K.0/24 between A and B over the same bridge.
#
# Usage: bench/hub.sh [--write]  (root; BENCH_ROUNDS=3 BENCH_SECONDS=10 BENCH_ENROL=100
#                                 BENCH_STORM_PEERS=200 BENCH_STORM_SOURCES=50; WG_FLOOD=...)
# --write replaces the hub section of bench/RESULTS.md. Everything it makes is removed at exit.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ENROL=${BENCH_ENROL:-100}
STORM_PEERS=${BENCH_STORM_PEERS:-200}
STORM_SOURCES=${BENCH_STORM_SOURCES:-50} # source addresses of the storm, at most 100
WG_FLOOD=${WG_FLOOD:+$(realpath -ms -- "$WG_FLOOD")}
WG_FLOOD=${WG_FLOOD:-$REPO_DIR/target/release/wg-flood}
WRITE=0
[[ ${1:-} == --write ]] && WRITE=1
bench_init
[[ -x $FERROWG ]] || (cd "$REPO_DIR" && cargo build --release -q -p ferrowg)
[[ -x $WG_FLOOD ]] || (cd "$REPO_DIR" && cargo build --release -q -p ferrowg-flood)

K=$(($$ % 200 + 20))
NS_H=fbh$$ NS_A=fba$$ NS_B=fbb$$
IF_H=bh$$ IF_A=ba$$ IF_B=bb$$ IF_DA=da$$ IF_DB=db$$
BENCH_IFACES+=("$IF_H" "$IF_A" "$IF_B" "$IF_DA" "$IF_DB")
DATA=$BENCH_TMP/hub
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
hub() { in_ns "$NS_H" "$FERROWG" hub "$@"; }

log "topology: hub and two devices on a bridge in the hub's namespace"
ip netns add "$NS_H"
BENCH_NETNS+=("$NS_H")
ip -n "$NS_H" link set lo up
ip -n "$NS_H" link add br0 type bridge
ip -n "$NS_H" addr add "10.99.$K.1/24" dev br0
ip -n "$NS_H" link set br0 up
n=10
for ns in "$NS_A" "$NS_B"; do
	n=$((n + 1))
	ip netns add "$ns"
	BENCH_NETNS+=("$ns")
	ip -n "$ns" link set lo up
	ip link add eth0 netns "$ns" type veth peer name "v$n$$" netns "$NS_H"
	ip -n "$NS_H" link set "v$n$$" master br0 up
	ip -n "$ns" addr add "10.99.$K.$n/24" dev eth0
	ip -n "$ns" link set eth0 up
done

log "hub: init, serve, policy (a may open TCP 5201 and ping b)"
hub init --data "$DATA" --endpoint "10.99.$K.1:51820" --api "10.99.$K.1:8443" --pool 10.64.0.0/16 >/dev/null
# Not through in_ns: $! must be the hub itself (ip netns exec execs it), for its CPU time.
ip netns exec "$NS_H" "$FERROWG" hub serve --data "$DATA" --iface "$IF_H" >"$BENCH_TMP/hub.log" 2>&1 &
HUB_PID=$!
BENCH_PIDS+=("$HUB_PID")
for ((i = 0; i < 100; i++)); do hub device list --data "$DATA" >/dev/null 2>&1 && break; sleep 0.1; done
cat >"$BENCH_TMP/policy.hujson" <<'EOF'
{
  "tagOwners": { "tag:a": [], "tag:b": [] },
  "grants": [ { "src": ["tag:a"], "dst": ["tag:b"], "ip": ["tcp:5201", "icmp"] } ],
}
EOF
hub policy set --data "$DATA" "$BENCH_TMP/policy.hujson" >/dev/null
for who in a b; do
	ns=NS_${who^^} iface=IF_${who^^}
	token=$(hub token create --data "$DATA" --group "$who")
	in_ns "${!ns}" "$FERROWG" enroll "$token" --iface "${!iface}" --name "dev-$who" \
		--config-dir "$BENCH_TMP/$who" >/dev/null 2>&1 || die "enrolment of $who failed"
done
addr_of() { hub device show "$1" --data "$DATA" --json | grep -o '"10\.64\.[0-9.]*' | head -1 | tr -d '"'; }
B_HUB=$(addr_of dev-b)

log "direct tunnel A <-> B (ferrowg on both ends)"
KA=$(wg genkey) KB=$(wg genkey)
mkdir -p "$BENCH_TMP/direct"
printf '[Interface]\nPrivateKey = %s\nAddress = 10.250.%s.1/24\nListenPort = 51900\n\n[Peer]\nPublicKey = %s\nEndpoint = 10.99.%s.12:51900\nAllowedIPs = 10.250.%s.2/32\n' \
	"$KA" "$K" "$(wg pubkey <<<"$KB")" "$K" "$K" >"$BENCH_TMP/direct/$IF_DA.conf"
printf '[Interface]\nPrivateKey = %s\nAddress = 10.250.%s.2/24\nListenPort = 51900\n\n[Peer]\nPublicKey = %s\nEndpoint = 10.99.%s.11:51900\nAllowedIPs = 10.250.%s.1/32\n' \
	"$KB" "$K" "$(wg pubkey <<<"$KA")" "$K" "$K" >"$BENCH_TMP/direct/$IF_DB.conf"
chmod 600 "$BENCH_TMP"/direct/*.conf
in_ns "$NS_A" "$FERROWG" up "$BENCH_TMP/direct/$IF_DA.conf" >/dev/null 2>&1
in_ns "$NS_B" "$FERROWG" up "$BENCH_TMP/direct/$IF_DB.conf" >/dev/null 2>&1
B_DIRECT=10.250.$K.2

start_iperf_server
for target in "$B_HUB" "$B_DIRECT"; do
	for ((i = 0; i < 50; i++)); do in_ns "$NS_A" ping -c 1 -W 1 "$target" >/dev/null 2>&1 && break; sleep 0.2; done
	in_ns "$NS_A" ping -c 1 -W 1 "$target" >/dev/null 2>&1 || die "no path to $target"
done

# run_iperf TARGET: one bounded TCP run from A; prints Mbit/s (receiver side).
run_iperf() {
	local out=$BENCH_TMP/iperf.json
	iperf_client "$out" "$SECONDS_PER_RUN" -c "$1" || { echo 0; return; }
	jq -r '.end.sum_received.bits_per_second / 1e6 | floor' "$out"
}

through=() direct=() hubcpu=()
for ((r = 1; r <= ROUNDS; r++)); do
	t0=$(cpu_ticks "$HUB_PID") w0=$(now)
	through+=("$(run_iperf "$B_HUB")")
	t1=$(cpu_ticks "$HUB_PID") w1=$(now)
	hubcpu+=("$(fcalc "100 * ($t1 - $t0) / $CLK_TCK / ($w1 - $w0)" %.0f)")
	direct+=("$(run_iperf "$B_DIRECT")")
	log "round $r: through the hub ${through[-1]} Mbit/s (hub CPU ${hubcpu[-1]} %), direct ${direct[-1]} Mbit/s"
done
med_through=$(echo "${through[*]}" | stat_of median)
med_direct=$(echo "${direct[*]}" | stat_of median)
med_cpu=$(echo "${hubcpu[*]}" | stat_of median)

# enrol_rate PARALLEL: enrolments per second of N `ferrowg enroll --no-up` in NS_A.
enrol_rate() {
	local par=$1 token t0 t1 dir=$BENCH_TMP/enrol-$1
	mkdir -p "$dir"
	token=$(hub token create --data "$DATA" --group a --uses "$ENROL")
	t0=$(now)
	seq 1 "$ENROL" | xargs -P "$par" -I{} ip netns exec "$NS_A" "$FERROWG" enroll "$token" \
		--iface "e${par}x{}" --name "bench-$par-{}" --no-up --config-dir "$dir" >/dev/null 2>&1 ||
		die "an enrolment failed"
	t1=$(now)
	[[ $(find "$dir" -name '*.conf' | wc -l) -eq $ENROL ]] || die "not every enrolment wrote its config"
	fcalc "$ENROL / ($t1 - $t0)" %.1f
}
log "enrolments: $ENROL one at a time, then $ENROL four at a time"
enrol1=$(enrol_rate 1)
enrol4=$(enrol_rate 4)
log "handshake storm: $STORM_PEERS admitted peers from $STORM_SOURCES addresses for $SECONDS_PER_RUN s"
((STORM_SOURCES >= 1 && STORM_SOURCES <= 100)) || die "BENCH_STORM_SOURCES must be 1..100"
for ((j = 0; j < STORM_SOURCES; j++)); do
	ip -n "$NS_A" addr add "10.99.$K.$((100 + j))/24" dev eth0
done
HUB_KEY=$(sed -n 's/^PublicKey = //p' "$BENCH_TMP/a/$IF_A.conf")
storm_opts=(--target "10.99.$K.1:51820" --target-key "$HUB_KEY" --peers "$STORM_PEERS" --seed "$$")
n=0
while read -r key; do
	n=$((n + 1))
	hub device add --data "$DATA" "storm-$n" --public-key "$key" --group storm >/dev/null ||
		die "cannot admit storm peer $n"
done < <("$WG_FLOOD" storm-keys "${storm_opts[@]}")
sleep 2 # one sync round: every peer is on the interface
t0=$(cpu_ticks "$HUB_PID") w0=$(now)
# bash's `time` gives the load generator's own CPU (user and system seconds) on fd 3.
TIMEFORMAT='%U %S'
{ time timeout $((SECONDS_PER_RUN + 30)) ip netns exec "$NS_A" "$WG_FLOOD" storm "${storm_opts[@]}" \
	--duration "$SECONDS_PER_RUN" --bind "10.99.$K.100" --sources "$STORM_SOURCES" >"$BENCH_TMP/storm.out"; } 2>"$BENCH_TMP/storm.time" ||
	die "storm failed: $(cat "$BENCH_TMP/storm.out")"
t1=$(cpu_ticks "$HUB_PID") w1=$(now)
storm=$(cat "$BENCH_TMP/storm.out")
storm_cpu=$(fcalc "100 * ($t1 - $t0) / $CLK_TCK / ($w1 - $w0)" %.0f)
gen_cpu=$(awk -v w="$(fcalc "$w1 - $w0")" '{ printf "%.0f", 100 * ($1 + $2) / w }' "$BENCH_TMP/storm.time")
log "$storm (hub CPU $storm_cpu %, load generator CPU $gen_cpu %)"
field() { tr ' ' '\n' <<<"$storm" | sed -n "s/^$1=//p"; }
devices=$(hub device list --data "$DATA" --json | grep -o '"name"' | wc -l)

report=$BENCH_TMP/report.md
{
	# shellcheck disable=SC2016 # backquotes are markdown
	printf '## The fleet hub (`bench/hub.sh`)\n\n'
	# shellcheck disable=SC2016
	printf 'Run: `%s` on %s; %s rounds of %s s per path, interleaved; %s enrolments per rate.\n\n' \
		"$(command_line "$@")" "$(date -u +%F)" "$ROUNDS" "$SECONDS_PER_RUN" "$ENROL"
	machine_info
	printf '\n'
} >"$report"
{
	printf 'what\tmedian\truns\n'
	printf 'TCP device to device through the hub (Mbit/s)\t%s\t%s\n' "$med_through" "${through[*]}"
	printf 'TCP between the same devices, direct tunnel (Mbit/s)\t%s\t%s\n' "$med_direct" "${direct[*]}"
	printf 'through the hub / direct\t%s\t\n' "$(fcalc "$med_through / $med_direct" %.2f)"
	printf 'hub CPU while forwarding (%% of one core)\t%s\t%s\n' "$med_cpu" "${hubcpu[*]}"
	printf 'enrolments per second, one at a time\t%s\t\n' "$enrol1"
	printf 'enrolments per second, four at a time\t%s\t\n' "$enrol4"
	printf 'handshakes per second the hub completed (%s peers, %s addresses)\t%s\t\n' "$STORM_PEERS" "$STORM_SOURCES" "$(field handshakes_per_s)"
	printf 'cookie replies during the storm / initiations\t%s / %s\t\n' "$(field cookie_replies)" "$(field initiations)"
	printf 'hub CPU during the storm (%% of one core)\t%s\t\n' "$storm_cpu"
	printf 'load generator CPU during the storm (%% of one core)\t%s\t\n' "$gen_cpu"
	printf 'devices in the hub at the end\t%s\t\n' "$devices"
} | md_table >>"$report"
cat >>"$report" <<EOF

How to read it: through the hub, three processes encrypt or decrypt (device A, the hub twice,
device B) on this machine's $(nproc) cores, against two for the direct tunnel. In the storm,
the hub is under load (cookie replies) once more than 1,024 handshake messages a second
arrive, and then admits at most 20 handshakes a second per source address, as the kernel does:
with $STORM_SOURCES addresses that caps the storm near $((STORM_SOURCES * 20))/s while neither the
hub nor the load generator uses a whole core. It is a protection, not the hub's DH capacity.
EOF
cat "$report"
if ((WRITE)); then
	write_section "$BENCH_DIR/RESULTS.md" hub "$report"
	log "wrote the hub section of bench/RESULTS.md"
fi
