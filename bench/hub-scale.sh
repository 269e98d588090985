#!/usr/bin/env bash
# bench/hub-scale.sh — the hub with N devices (issue #19), for each N in BENCH_SCALE_SIZES:
#
#   1. admission: N devices added with `hub device import` (8 API requests in flight, one
#      store transaction each), devices per second;
#   2. memory: the hub's RSS before the import and once its interface has the N peers, per
#      device;
#   3. coming up: `wg-flood fleet`, N simulated devices (real keys, one process, on
#      BENCH_SCALE_SOURCES source addresses) all handshaking at once: seconds until every device
#      has a session, handshakes per second, cookie replies;
#   4. device to device: the same devices sending BENCH_SCALE_RATE UDP packets per second to
#      each other at random through the hub for BENCH_SECONDS: packets delivered per second;
#   5. reconnect after a restart: the hub stopped and started again, then every device
#      handshaking at once again: seconds until all N are up;
#   6. policy change: `hub policy set` (parse, the policy's tests, store) wall time, and the
#      time until the hub's interface forwards under the new policy is not measured here.
#
#   NS_H: hub, 10.98.K.1/24 ---- NS_F: the fleet, 10.98.K.100.. (one address per source)
#
# Usage: bench/hub-scale.sh [--write]  (root; BENCH_SCALE_SIZES="1000 10000"
#        BENCH_SCALE_SOURCES=100 BENCH_SCALE_RATE=20000 BENCH_SECONDS=10; WG_FLOOD=...)
# --write replaces the scale section of bench/RESULTS.md. Everything it makes is removed
# at exit.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZES=${BENCH_SCALE_SIZES:-1000 10000}
SOURCES=${BENCH_SCALE_SOURCES:-100} # at most 100
RATE=${BENCH_SCALE_RATE:-20000}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
WG_FLOOD=${WG_FLOOD:+$(realpath -ms -- "$WG_FLOOD")}
WG_FLOOD=${WG_FLOOD:-$REPO_DIR/target/release/wg-flood}
WRITE=0
[[ ${1:-} == --write ]] && WRITE=1
bench_init
[[ -x $FERROWG ]] || (cd "$REPO_DIR" && cargo build --release -q -p ferrowg)
[[ -x $WG_FLOOD ]] || (cd "$REPO_DIR" && cargo build --release -q -p ferrowg-flood)

K=$(($$ % 200 + 20))
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
rows=()

for N in $SIZES; do
	NS_H=fsh$$n$N NS_F=fsf$$n$N IF_H=sh$$x$N
	BENCH_IFACES+=("$IF_H")
	DATA=$BENCH_TMP/hub$N
	hub() { in_ns "$NS_H" "$FERROWG" hub "$@"; }
	log "N=$N: topology"
	for ns in "$NS_H" "$NS_F"; do
		ip netns add "$ns"
		BENCH_NETNS+=("$ns")
		ip -n "$ns" link set lo up
	done
	ip link add eth0 netns "$NS_H" type veth peer name eth0 netns "$NS_F"
	ip -n "$NS_H" addr add "10.98.$K.1/24" dev eth0
	for ((s = 0; s < SOURCES; s++)); do ip -n "$NS_F" addr add "10.98.$K.$((100 + s))/24" dev eth0; done
	ip -n "$NS_H" link set eth0 up
	ip -n "$NS_F" link set eth0 up

	serve() {
		ip netns exec "$NS_H" "$FERROWG" hub serve --data "$DATA" --iface "$IF_H" --metrics off \
			>>"$BENCH_TMP/hub$N.log" 2>&1 &
		HUB_PID=$!
		BENCH_PIDS+=("$HUB_PID")
		for ((i = 0; i < 300; i++)); do hub device list --data "$DATA" >/dev/null 2>&1 && return 0; sleep 0.1; done
		die "the hub did not start"
	}
	hub init --data "$DATA" --endpoint "10.98.$K.1:51820" --api "10.98.$K.1:8443" --pool 10.64.0.0/16 >/dev/null
	serve
	HUB_KEY=$(hub settings --data "$DATA" --json | sed -n 's/.*"public_key": *"\([^"]*\)".*/\1/p')
	printf '{ "tagOwners": { "tag:fleet": [] }, "grants": [ { "src": ["tag:fleet"], "dst": ["tag:fleet"], "ip": ["*"] } ] }\n' \
		>"$BENCH_TMP/policy.hujson"
	hub policy set --data "$DATA" "$BENCH_TMP/policy.hujson" >/dev/null
	rss_empty=$(rss_kib "$HUB_PID")

	log "N=$N: import"
	"$WG_FLOOD" storm-keys --target "10.98.$K.1:51820" --target-key "$HUB_KEY" --peers "$N" --seed 7 |
		awk '{ printf "f-%d %s fleet\n", NR - 1, $1 }' >"$BENCH_TMP/import$N"
	hub device import --data "$DATA" "$BENCH_TMP/import$N" >"$BENCH_TMP/added$N" 2>"$BENCH_TMP/import$N.err" ||
		{ cat "$BENCH_TMP/import$N.err"; die "import failed"; }
	import_rate=$(sed -n 's/.*(\([0-9.]*\) per second).*/\1/p' "$BENCH_TMP/import$N.err")
	awk '{ split($1, a, "-"); print a[2], $2 }' "$BENCH_TMP/added$N" | sort -n | awk '{ print $2 }' >"$BENCH_TMP/addrs$N"
	for ((i = 0; i < 600; i++)); do
		[[ $(in_ns "$NS_H" "$FERROWG" show "$IF_H" peers | wc -l) -ge $N ]] && break
		sleep 0.1
	done
	rss_full=$(rss_kib "$HUB_PID")
	per_device=$(awk -v a="$rss_empty" -v b="$rss_full" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')

	fleet() {
		in_ns "$NS_F" "$WG_FLOOD" fleet --target "10.98.$K.1:51820" --target-key "$HUB_KEY" \
			--peers "$N" --seed 7 --addresses "$BENCH_TMP/addrs$N" --bind "10.98.$K.100" \
			--sources "$SOURCES" --rate "$RATE" --duration "$1" --timeout 300 || true
	}
	log "N=$N: all devices up at once, then traffic between them"
	first=$(fleet "$SECONDS_PER_RUN")
	log "$first"

	log "N=$N: policy change"
	sed -i 's/"\*"\] } \] }/"*"] } ], "tests": [] }/' "$BENCH_TMP/policy.hujson"
	t0=$(now)
	hub policy set --data "$DATA" "$BENCH_TMP/policy.hujson" >/dev/null
	policy_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')

	log "N=$N: restart, every device again at once"
	kill -TERM "$HUB_PID"
	wait "$HUB_PID" 2>/dev/null || true
	serve
	for ((i = 0; i < 600; i++)); do
		[[ $(in_ns "$NS_H" "$FERROWG" show "$IF_H" peers | wc -l) -ge $N ]] && break
		sleep 0.1
	done
	again=$(fleet 1)
	log "$again"
	rows+=("| $N | $import_rate | $rss_empty | $rss_full | $per_device | $(field up_seconds "$first") | $(field up_handshakes_per_s "$first") | $(field cookie_replies "$first") | $(field delivered_per_s "$first") | $(field sent "$first") | $(field delivered "$first") | $(field up_seconds "$again") | $policy_s |")
	kill -TERM "$HUB_PID" 2>/dev/null || true
	wait "$HUB_PID" 2>/dev/null || true
done

table=$(
	echo "| devices | import (devices/s) | hub RSS empty (KiB) | hub RSS with N (KiB) | RSS per device (KiB) | all up (s) | handshakes/s | cookie replies | delivered packets/s | sent | delivered | all up again after a restart (s) | policy set (s) |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s\n' "${rows[@]}"
)
echo "$table"
report=$BENCH_TMP/report.md
{
	echo "## The hub at scale (\`bench/hub-scale.sh\`)"
	echo
	echo "Run: \`bench/hub-scale.sh --write\` on $(date -u +%Y-%m-%d), $(nproc) CPUs; the fleet on $SOURCES source addresses, $RATE packets/s offered for $SECONDS_PER_RUN s; release builds."
	echo
	echo "$table"
	cat "$REPO_DIR/bench/hub-scale.md"
} >"$report"
if ((WRITE)); then
	write_section "$BENCH_DIR/RESULTS.md" scale "$report"
	log "wrote the scale section of bench/RESULTS.md"
fi
