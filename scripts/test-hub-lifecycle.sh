#!/usr/bin/env bash
# The hub's life beyond the demo, each as a check that fails the script:
#
#   - its WireGuard key lives in a SoftHSM2 token (`hub init --pkcs11`), and devices complete
#     handshakes with it through `hub serve`;
#   - `kill -9` of the hub during a burst of concurrent enrolments loses nothing it
#     acknowledged: after a restart every device that received its configuration is listed,
#     with the address in that configuration, and no address is given twice;
#   - the hub's metrics count the devices known and online, and name peers after devices;
#   - the key-rotation schedule: `ferrowg key rotate IFACE --if-due` changes nothing before the
#     key is due; an overdue device stays connected; when due, it rotates, the hub moves the
#     device to its new key, and traffic continues; a bad schedule is refused and changes
#     nothing.
#
#   scripts/test-hub-lifecycle.sh              (as root; builds ferrowg if FERROWG is not set)
#
# Namespaces, processes and files of its own, removed at the end, also when a check fails.
# Bounded: every wait has a limit; it takes about 30 s.
set -euo pipefail
cd "$(dirname "$0")/.."

failures=0
# shellcheck source=scripts/hub-lib.sh
. scripts/hub-lib.sh
require_root_and test-hub-lifecycle.sh ip ping softhsm2-util
softhsm_available || { echo "test-hub-lifecycle.sh: $SOFTHSM_MODULE is not installed" >&2; exit 2; }
if [ -z "${FERROWG:-}" ]; then
  cargo build --release -q -p ferrowg
  FERROWG=$PWD/target/release/ferrowg
fi

id=$$
NS_HUB=flhub$id NS_D=fldev$id
IF_HUB=lh$id
BURST=${BURST:-100}         # concurrent enrolments
KILL_AFTER=${KILL_AFTER:-25} # acknowledged enrolments before the kill
TMP=$(mktemp -d -t ferrowg-hub-lifecycle.XXXXXX)
DATA=$TMP/hub
hub_pid=
dev_if=

cleanup() {
  set +e
  [ -n "$hub_pid" ] && { kill -9 "$hub_pid"; wait "$hub_pid"; } 2>/dev/null
  for ns in "$NS_D" "$NS_HUB"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  rm -f "/var/run/wireguard/$IF_HUB.sock"
  [ -n "$dev_if" ] && rm -f "/var/run/wireguard/$dev_if.sock"
  rm -rf "$TMP"
}
trap cleanup EXIT

hub() { in_ns "$NS_HUB" "$FERROWG" hub "$@"; }
serve() {
  # Not through the in_ns function: $! must be the hub itself (ip netns exec execs it), not a
  # subshell, for kill -9 to reach it.
  ip netns exec "$NS_HUB" "$FERROWG" hub serve --data "$DATA" --iface "$IF_HUB" >>"$TMP/hub.log" 2>&1 &
  hub_pid=$!
  wait_until 15 hub device list --data "$DATA" || { cat "$TMP/hub.log"; echo "the hub did not start" >&2; exit 1; }
}
# field NAME KEY: a string field of device NAME from `device show --json`.
field() { hub device show "$1" --data "$DATA" --json | sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\).*/\1/p" | head -1; }

say "network: the hub's namespace and a device's, joined by a veth"
ip netns add "$NS_HUB"
ip netns add "$NS_D"
ip -n "$NS_HUB" link set lo up
ip -n "$NS_D" link set lo up
ip link add eth0 netns "$NS_D" type veth peer name eth0 netns "$NS_HUB"
ip -n "$NS_HUB" addr add 10.98.0.1/24 dev eth0
ip -n "$NS_D" addr add 10.98.0.2/24 dev eth0
ip -n "$NS_HUB" link set eth0 up
ip -n "$NS_D" link set eth0 up

say "hub: its key made inside a SoftHSM2 token; init --pkcs11, serve"
softhsm_token "$TMP/softhsm" "hub$id"
uri="pkcs11:token=hub$id;object=hub$SOFTHSM_QUERY"
hub_pub=$("$FERROWG" genkey --pkcs11 "$uri")
hub init --data "$DATA" --endpoint 10.98.0.1:51820 --api 10.98.0.1:8443 --pool 10.65.0.0/16 \
  --pkcs11 "$uri" --rotate-after 1h >/dev/null
serve
check "the hub's WireGuard key is the token's ($hub_pub)" \
  grep -q "^$hub_pub\$" <(hub settings --data "$DATA" --json | sed -n 's/.*"public_key": *"\([^"]*\)".*/\1/p')

say "kill -9 during a burst of $BURST concurrent enrolments"
token=$(hub token create --data "$DATA" --group burst --uses 0 --expires 1h)
mkdir -p "$TMP/burst"
enrol_pids=()
for i in $(seq "$BURST"); do
  in_ns "$NS_HUB" "$FERROWG" enroll "$token" --iface "b$i" --name "burst-$i" \
    --config-dir "$TMP/burst" --no-up >"$TMP/burst/$i.out" 2>&1 &
  enrol_pids+=($!)
done
acked() { find "$TMP/burst" -name '*.conf' | wc -l; }
for _ in $(seq 3000); do [ "$(acked)" -ge "$KILL_AFTER" ] && break; sleep 0.01; done
kill -9 "$hub_pid"
wait "$hub_pid" 2>/dev/null || true
hub_pid=
before=$(acked)
for p in "${enrol_pids[@]}"; do wait "$p" 2>/dev/null || true; done
acknowledged=$(acked)
echo "acknowledged: $before when the hub was killed, $acknowledged after every enrolment returned (of $BURST)"
if [ "$acknowledged" -ge "$KILL_AFTER" ] && [ "$acknowledged" -lt "$BURST" ]; then
  ok "the hub was killed mid-burst ($acknowledged of $BURST acknowledged)"
else
  fail "the hub was killed mid-burst ($acknowledged of $BURST acknowledged)"
fi
serve
hub device list --data "$DATA" --json >"$TMP/list.json"
lost=0
for conf in "$TMP/burst"/*.conf; do
  name=$(basename "$conf" .conf); name=burst-${name#b}
  addr=$(sed -n 's/^Address = \([0-9.]*\).*/\1/p' "$conf")
  if ! hub device show "$name" --data "$DATA" --json 2>/dev/null | grep -q "\"$addr/32\""; then
    echo "lost: $name ($addr) was acknowledged but is not listed with that address"
    lost=$((lost + 1))
  fi
done
if [ "$lost" -eq 0 ]; then ok "every acknowledged enrolment survived kill -9 ($acknowledged)"; else fail "every acknowledged enrolment survived kill -9 ($lost lost)"; fi
dups=$(grep -o '"10\.65\.[0-9.]*/32"' "$TMP/list.json" | sort | uniq -d | wc -l)
listed=$(grep -c '"name"' "$TMP/list.json" || true)
if [ "$dups" -eq 0 ]; then ok "no address given twice ($listed devices listed)"; else fail "no address given twice ($dups duplicates)"; fi

say "a device handshakes with the hub's token key"
conf=$(ls "$TMP/burst"/*.conf | head -1)
dev_if=l${id}x
name=$(basename "$conf" .conf); name=burst-${name#b}
mkdir -p "$TMP/dev"
cp "$conf" "$TMP/dev/$dev_if.conf"
in_ns "$NS_D" "$FERROWG" up "$TMP/dev/$dev_if.conf" >"$TMP/up.log" 2>&1 || cat "$TMP/up.log"
check "$name pings the hub's tunnel address through a handshake with the token's key" \
  wait_until 10 in_ns "$NS_D" ping -c 1 -W 1 10.65.0.1
online() { hub device show "$name" --data "$DATA" --json | grep -q '"online": *true'; }
check "$name is online" wait_until 10 online

say "the hub's metrics (hub serve --metrics, default 127.0.0.1:9586)"
scrape() {
  in_ns "$NS_HUB" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9586 &&
    printf "GET /metrics HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n" >&3 && timeout 5 cat <&3'
}
scrape >"$TMP/metrics.txt" || true
check "devices online: 1" grep -qx 'ferrowg_hub_devices_online 1' "$TMP/metrics.txt"
check "devices: $listed, as listed" grep -qx "ferrowg_hub_devices $listed" "$TMP/metrics.txt"
for metric in $(grep -o 'ferrowg_hub_[a-z_]*' dist/grafana/ferrowg-dashboard.json | sort -u); do
  base=${metric%_total}
  check "the dashboard's $metric is exported" grep -Eq "^$base(_total)?[ {]" "$TMP/metrics.txt"
done
check "$name's latest handshake, under its device name" \
  grep -Eq "^wireguard_latest_handshake_seconds\{.*friendly_name=\"$name\".*\} [1-9]" "$TMP/metrics.txt"

say "rotation schedule: not due, overdue, due"
old_pub=$(field "$name" public_key)
in_ns "$NS_D" "$FERROWG" key rotate "$dev_if" --config-dir "$TMP/dev" --if-due 2>"$TMP/rot1.err" || true
cat "$TMP/rot1.err"
if grep -q "not due" "$TMP/rot1.err" && [ "$(field "$name" public_key)" = "$old_pub" ]; then
  ok "key rotate --if-due changes nothing while the key is younger than 1h"
else
  fail "key rotate --if-due changes nothing while the key is younger than 1h"
fi
refuse "a schedule that is not a duration is refused" hub settings --data "$DATA" --rotate-after soon
check "... and changes nothing" grep -q '"rotate_after": 3600' <(hub settings --data "$DATA" --json)
hub settings --data "$DATA" --rotate-after 1 >/dev/null
sleep 1.5
check "the device is listed as due" grep -q '"rotation_due": true' <(hub device show "$name" --data "$DATA" --json)
check "an overdue device stays connected" in_ns "$NS_D" ping -c 2 -W 1 10.65.0.1
new_pub=$(in_ns "$NS_D" "$FERROWG" key rotate "$dev_if" --config-dir "$TMP/dev" --if-due 2>"$TMP/rot2.err") || cat "$TMP/rot2.err"
cat "$TMP/rot2.err"
hub settings --data "$DATA" --rotate-after 1h >/dev/null
rotated() { [ -n "$new_pub" ] && [ "$(field "$name" public_key)" = "$new_pub" ]; }
if [ -n "$new_pub" ] && [ "$new_pub" != "$old_pub" ] && wait_until 10 rotated; then
  ok "when due, key rotate --if-due rotates: the hub knows $name by its new key"
else
  fail "when due, key rotate --if-due rotates: the hub knows $name by its new key"
fi
check "traffic continues on the new key" in_ns "$NS_D" ping -c 2 -W 1 10.65.0.1
check "the new key is not due under the 1h schedule" grep -q '"rotation_due": false' <(hub device show "$name" --data "$DATA" --json)

if [ "$failures" -ne 0 ]; then
  echo "test-hub-lifecycle.sh: $failures check(s) failed; the hub's log:"
  tail -n 40 "$TMP/hub.log"
  exit 1
fi
echo "test-hub-lifecycle.sh: every check passed"
