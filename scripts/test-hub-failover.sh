#!/usr/bin/env bash
# Two hub nodes on one PostgreSQL database, active and standby, each in a namespace of its own;
# two devices talking to each other through the hub. Each as a check that fails the script:
#
#   - a change made through one node (a token created on the standby) reaches the other at once
#     (the time until the active node's interface has the enrolled devices is printed);
#   - failover: the active node is killed with kill -9 and the devices' endpoint, a service
#     address on an interface of its own, moves to the standby's namespace; the devices' pings
#     to each other resume through the standby (the longest gap between replies is printed:
#     the standby handshakes at once with a device whose datagrams it cannot open);
#   - fail-static: PostgreSQL stopped, the devices keep talking through the hub on its last
#     configuration, an admin write answers 503 database-unavailable; PostgreSQL started again,
#     the write succeeds.
#
#   scripts/test-hub-failover.sh              (as root; builds ferrowg if FERROWG is not set)
#
# Networks: "public" 10.96.0.0/24 (devices, the service address 10.96.0.10) and "backend"
# 10.95.0.0/24 (the database, the nodes), bridges in a namespace of their own. Everything it
# made is removed at the end, also when a check fails. Bounded: every wait has a limit.
set -euo pipefail
cd "$(dirname "$0")/.."

failures=0
# shellcheck source=scripts/hub-lib.sh
. scripts/hub-lib.sh
require_root_and test-hub-failover.sh ip ping runuser
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PG_BIN/initdb" ] || { echo "test-hub-failover.sh: PostgreSQL is not installed" >&2; exit 2; }
if [ -z "${FERROWG:-}" ]; then
  cargo build --release -q -p ferrowg
  FERROWG=$PWD/target/release/ferrowg
fi

id=$$
NS_NET=fvnet$id NS_DB=fvdb$id NS_A=fva$id NS_B=fvb$id NS_1=fv1$id NS_2=fv2$id
IF_A=ha$id IF_B=hb$id IF_1=d1$id IF_2=d2$id
TMP=$(mktemp -d -t ferrowg-hub-failover.XXXXXX)
chmod 755 "$TMP"
PGDIR=$TMP/pg
A_PID= B_PID=

cleanup() {
  set +e
  for p in $A_PID $B_PID; do kill -9 "$p" 2>/dev/null; done
  [ -d "$PGDIR/data" ] && ip netns exec "$NS_DB" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1
  for ns in "$NS_1" "$NS_2" "$NS_A" "$NS_B" "$NS_DB" "$NS_NET"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  for i in "$IF_A" "$IF_B" "$IF_1" "$IF_2"; do rm -f "/var/run/wireguard/$i.sock"; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# join NS DEV BRIDGE ADDR: a veth DEV in NS on BRIDGE, with ADDR (none if empty).
join() {
  local ns=$1 dev=$2 br=$3 addr=$4 peer="p${RANDOM}x$id"
  ip link add "$dev" netns "$ns" type veth peer name "$peer" netns "$NS_NET"
  ip -n "$NS_NET" link set "$peer" master "$br" up
  [ -n "$addr" ] && ip -n "$ns" addr add "$addr" dev "$dev"
  ip -n "$ns" link set "$dev" up
}
node() { local ns=$1 dir=$2; shift 2; in_ns "$ns" "$FERROWG" hub "$@" --data "$dir"; }
serve() {
  local ns=$1 dir=$2 iface=$3
  # Not through in_ns: $! must be the hub itself, for kill -9 to reach it. Nodes sharing the
  # database need distinct names (both share this host's name).
  ip netns exec "$ns" "$FERROWG" hub serve --data "$dir" --iface "$iface" --api 0.0.0.0:8443 \
    --node "$iface" --metrics off >>"$TMP/$iface.log" 2>&1 &
}

say "networks: public (devices, service address) and backend (database, nodes)"
for ns in "$NS_NET" "$NS_DB" "$NS_A" "$NS_B" "$NS_1" "$NS_2"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
for br in pub back; do
  ip -n "$NS_NET" link add "$br" type bridge
  ip -n "$NS_NET" link set "$br" up
done
join "$NS_DB" eth0 back 10.95.0.5/24
join "$NS_A" back0 back 10.95.0.11/24
join "$NS_B" back0 back 10.95.0.12/24
join "$NS_1" eth0 pub 10.96.0.21/24
join "$NS_2" eth0 pub 10.96.0.22/24
# The service address's own interface: it moves between the nodes with its MAC address.
join "$NS_A" svc pub 10.96.0.10/24

say "PostgreSQL in its own namespace, on 10.95.0.5:5432"
mkdir -p "$PGDIR"
chown postgres:postgres "$PGDIR"
runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDIR/data" -U ferrowg --auth=trust -E UTF8 >/dev/null
echo "host all all 10.95.0.0/24 trust" >>"$PGDIR/data/pg_hba.conf"
pg() { ip netns exec "$NS_DB" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" "$@"; }
pg -o "-c listen_addresses=10.95.0.5 -k $PGDIR" -w -t 30 start >/dev/null
in_ns "$NS_DB" runuser -u postgres -- "$PG_BIN/psql" -h 10.95.0.5 -U ferrowg -d postgres -q -c "CREATE DATABASE hub"
DB=postgres://ferrowg@10.95.0.5:5432/hub

say "node A: init on the database; node B: a copy of A's data directory; both serve"
in_ns "$NS_A" "$FERROWG" hub init --data "$TMP/a" --endpoint 10.96.0.10:51820 --api 0.0.0.0:8443 \
  --api-url https://10.96.0.10:8443 --pool 10.66.0.0/16 --database "$DB" >/dev/null
cp -a "$TMP/a" "$TMP/b"
serve "$NS_A" "$TMP/a" "$IF_A"; A_PID=$!
serve "$NS_B" "$TMP/b" "$IF_B"; B_PID=$!
wait_until 15 node "$NS_A" "$TMP/a" device list || { cat "$TMP/$IF_A.log"; exit 1; }
wait_until 15 node "$NS_B" "$TMP/b" device list || { cat "$TMP/$IF_B.log"; exit 1; }
cat >"$TMP/policy.hujson" <<'EOF'
{ "tagOwners": { "tag:fleet": [] }, "grants": [ { "src": ["tag:fleet"], "dst": ["tag:fleet"], "ip": ["*"] } ] }
EOF
node "$NS_B" "$TMP/b" policy set "$TMP/policy.hujson" >/dev/null

say "a token made on node B enrols devices through node A"
token=$(node "$NS_B" "$TMP/b" token create --group fleet --uses 2)
for n in 1 2; do
  ns_var=NS_$n if_var=IF_$n
  in_ns "${!ns_var}" "$FERROWG" enroll "$token" --iface "${!if_var}" --name "dev$n-$id" --config-dir "$TMP/d$n" >/dev/null 2>"$TMP/enrol$n.err" ||
    { cat "$TMP/enrol$n.err"; fail "dev$n enrols through node A with node B's token"; }
done
enrolled=$(date +%s.%N)
has_peers() { [ "$(in_ns "$NS_B" "$FERROWG" show "$IF_B" peers | wc -l)" -ge 2 ]; }
if wait_until 10 has_peers; then
  ok "node B's interface has both devices (enrolled through node A) after $(awk -v a="$enrolled" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"
else
  fail "node B's interface has both devices (enrolled through node A)"
fi
addr_of() { sed -n 's/^Address = \([0-9.]*\).*/\1/p' "$TMP/d$1/$2.conf"; }
A1=$(addr_of 1 "$IF_1") A2=$(addr_of 2 "$IF_2")
check "dev1 pings dev2 through node A" wait_until 10 in_ns "$NS_1" ping -c 1 -W 1 "$A2"
check "dev2 pings dev1 through node A" in_ns "$NS_2" ping -c 1 -W 1 "$A1"
# Node A records the devices' endpoints, which node B uses after a takeover.
recorded() { node "$NS_B" "$TMP/b" device list --json | grep -c '"endpoint": "10.96.0.2' | grep -qx 2; }
check "the devices' endpoints are in the database" wait_until 15 recorded

say "failover: kill -9 node A, move the service address to node B"
in_ns "$NS_1" ping -D -n -i 0.05 -W 1 -w 40 "$A2" >"$TMP/ping.log" 2>&1 &
ping_pid=$!
sleep 3
killed=$(date +%s.%N)
kill -9 "$A_PID"; wait "$A_PID" 2>/dev/null || true; A_PID=
ip -n "$NS_A" link set svc netns "$NS_B"
ip -n "$NS_B" addr add 10.96.0.10/24 dev svc
ip -n "$NS_B" link set svc up
echo "node A killed and the address moved at $killed"
sleep 15
kill -INT "$ping_pid" 2>/dev/null || true
wait "$ping_pid" 2>/dev/null || true
# The longest gap between two replies, and the first reply after the kill.
read -r gap after < <(awk -v k="$killed" '/bytes from/ { t = substr($1, 2, length($1) - 2);
    if (prev != "" && t - prev > gap) gap = t - prev; if (t > k && first == "") first = t - k; prev = t }
    END { printf "%.2f %.2f\n", gap, (first == "" ? -1 : first) }' "$TMP/ping.log")
echo "pings: $(grep -c 'bytes from' "$TMP/ping.log") replies; longest gap ${gap} s; first reply ${after} s after the kill"
if awk -v a="$after" 'BEGIN { exit !(a >= 0) }' && tail -5 "$TMP/ping.log" | grep -q 'bytes from'; then
  ok "traffic resumed through node B, ${after} s after the kill (longest gap ${gap} s)"
else
  fail "traffic resumed through node B"
fi
check "dev2 reaches dev1 through node B" in_ns "$NS_2" ping -c 2 -W 1 "$A1"

say "fail-static: PostgreSQL stops; the devices keep talking; admin writes answer 503"
pg -m fast stop >/dev/null
sleep 2
check "dev1 pings dev2 with the database down" in_ns "$NS_1" ping -c 5 -i 0.2 -W 1 "$A2"
if node "$NS_B" "$TMP/b" token create --group fleet >"$TMP/down.out" 2>&1; then
  fail "a token cannot be created while the database is down"
else
  cat "$TMP/down.out"
  check "the refusal is 503 database-unavailable" grep -qi "503\|database unavailable\|database-unavailable" "$TMP/down.out"
fi
check "dev2 still pings dev1 after the refusal" in_ns "$NS_2" ping -c 2 -W 1 "$A1"
pg -o "-c listen_addresses=10.95.0.5 -k $PGDIR" -w -t 30 start >/dev/null
check "with the database back, a token can be created again" wait_until 20 node "$NS_B" "$TMP/b" token create --group fleet

if [ "$failures" -ne 0 ]; then
  echo "test-hub-failover.sh: $failures check(s) failed; node B's log:"
  tail -n 40 "$TMP/$IF_B.log"
  exit 1
fi
echo "test-hub-failover.sh: every check passed"
