#!/usr/bin/env bash
# A ferrowg hub and three devices, each in a network namespace of its own, joined by a bridge
# in the hub's namespace (the "internet" is 10.99.0.0/24):
#
#   sensor-N    enrols with a token of group `sensor`, its key in a file it makes itself;
#   collector-N enrols with a token of group `collector`, its key made inside a SoftHSM2 token
#               (a file key if SoftHSM2 is not installed);
#   ops-N       a stock wireguard-go + wg-quick device the admin adds by its public key,
#               group `ops`.
#
# The policy lets sensors open TCP 5000 and ping collectors, and ops reach everything. Then it
# shows, each as a check that fails the script: allowed traffic flows device to device through
# the hub (ping, a checksummed TCP transfer), denied traffic does not (collectors cannot open
# connections to sensors), a spoofed source is dropped, and a revoked device is cut off within
# a second. Every packet between devices is forwarded inside the hub's process: the hub's
# namespace has net.ipv4.ip_forward=0.
#
#   scripts/demo-hub.sh              (as root; builds ferrowg if FERROWG is not set)
#
# Everything it made (namespaces, processes, files, sockets) is removed at the end, also when a
# check fails. Bounded: every wait has a limit; it takes about 30 s.
set -euo pipefail
cd "$(dirname "$0")/.."

failures=0
# shellcheck source=scripts/hub-lib.sh
. scripts/hub-lib.sh
require_root_and demo-hub.sh ip wg wg-quick wireguard-go socat ping sha256sum
if [ -z "${FERROWG:-}" ]; then
  cargo build --release -q -p ferrowg
  FERROWG=$PWD/target/release/ferrowg
fi

id=$$
NS_HUB=fwhub$id NS_S=fwsen$id NS_C=fwcol$id NS_O=fwops$id
IF_HUB=fh$id IF_S=fs$id IF_C=fc$id IF_O=fo$id
SENSOR=sensor-$id COLLECTOR=collector-$id OPS=ops-$id
TMP=$(mktemp -d -t ferrowg-demo-hub.XXXXXX)
DATA=$TMP/hub
pids=()

cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for ns in "$NS_S" "$NS_C" "$NS_O" "$NS_HUB"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
  done
  sleep 0.3
  for ns in "$NS_S" "$NS_C" "$NS_O" "$NS_HUB"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  for i in "$IF_HUB" "$IF_S" "$IF_C" "$IF_O"; do rm -f "/var/run/wireguard/$i.sock"; done
  rm -rf "$TMP"
}
trap cleanup EXIT

hub() { in_ns "$NS_HUB" "$FERROWG" hub "$@"; }

say "network: a bridge in the hub's namespace, one veth per device"
ip netns add "$NS_HUB"
in_ns "$NS_HUB" sysctl -q -w net.ipv4.ip_forward=0
ip -n "$NS_HUB" link set lo up
ip -n "$NS_HUB" link add br0 type bridge
ip -n "$NS_HUB" addr add 10.99.0.1/24 dev br0
ip -n "$NS_HUB" link set br0 up
n=10
for ns in "$NS_S" "$NS_C" "$NS_O"; do
  n=$((n + 1))
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add eth0 netns "$ns" type veth peer name "v$n$id" netns "$NS_HUB"
  ip -n "$NS_HUB" link set "v$n$id" master br0 up
  ip -n "$ns" addr add "10.99.0.$n/24" dev eth0
  ip -n "$ns" link set eth0 up
done

say "hub: init, serve"
hub init --data "$DATA" --endpoint 10.99.0.1:51820 --api 10.99.0.1:8443 --pool 10.64.0.0/16 --pool6 fd64::/64
in_ns "$NS_HUB" "$FERROWG" hub serve --data "$DATA" --iface "$IF_HUB" >"$TMP/hub.log" 2>&1 &
pids+=($!)
wait_until 10 hub device list --data "$DATA" || { cat "$TMP/hub.log"; echo "the hub did not start" >&2; exit 1; }
cat >"$TMP/policy.hujson" <<EOF
// Sensors may open TCP 5000 on collectors and ping them; ops reach everything.
{
  "tagOwners": { "tag:sensor": [], "tag:collector": [], "tag:ops": [] },
  "grants": [
    { "src": ["tag:sensor"], "dst": ["tag:collector"], "ip": ["tcp:5000", "icmp"] },
    { "src": ["tag:ops"], "dst": ["*"], "ip": ["*"] },
  ],
  "tests": [
    { "src": "tag:sensor", "accept": ["tag:collector:5000"], "deny": ["tag:collector:22"] },
    { "src": "tag:collector", "deny": ["tag:sensor:5000"] },
  ],
}
EOF
hub policy set --data "$DATA" "$TMP/policy.hujson"

say "$SENSOR: enrols with a token of group sensor (its key in a file it makes)"
token=$(hub token create --data "$DATA" --group sensor)
# Its site behind it: 192.168.1.0/24, where 192.168.1.10 answers.
ip -n "$NS_S" addr add 192.168.1.10/32 dev lo
in_ns "$NS_S" "$FERROWG" enroll "$token" --iface "$IF_S" --name "$SENSOR" --config-dir "$TMP/sensor" \
  --advertise-routes 192.168.1.0/24

say "$COLLECTOR: enrols with a token of group collector"
token=$(hub token create --data "$DATA" --group collector)
key_arg=(--key-file "$TMP/collector/key")
if softhsm_available; then
  softhsm_token "$TMP/softhsm" "demo$id"
  key_arg=(--pkcs11 "pkcs11:token=demo$id;object=wg$SOFTHSM_QUERY")
  echo "(its key is made inside a SoftHSM2 token and never leaves it)"
fi
# The same site prefix as the sensor's (off-the-shelf routers), where 192.168.1.20 answers.
ip -n "$NS_C" addr add 192.168.1.20/32 dev lo
in_ns "$NS_C" "$FERROWG" enroll "$token" --iface "$IF_C" --name "$COLLECTOR" "${key_arg[@]}" --config-dir "$TMP/collector" \
  --advertise-routes 192.168.1.0/24

say "$OPS: a stock wireguard-go device, added by its public key"
mkdir -p "$TMP/ops"
ops_key=$(wg genkey)
hub device add --data "$DATA" "$OPS" --public-key "$(wg pubkey <<<"$ops_key")" --group ops >"$TMP/ops/added.conf"
# The hub prints the device's config without a private key: the device adds its own.
sed "s|^\[Interface\]|[Interface]\nPrivateKey = $ops_key|" "$TMP/ops/added.conf" >"$TMP/ops/$IF_O.conf"
chmod 600 "$TMP/ops/$IF_O.conf"
in_ns "$NS_O" env WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go wg-quick up "$TMP/ops/$IF_O.conf" >/dev/null 2>&1

addr_of() { hub device show "$1" --data "$DATA" --json | grep -o '"10\.64\.[0-9.]*' | head -1 | tr -d '"'; }
S_ADDR=$(addr_of "$SENSOR") C_ADDR=$(addr_of "$COLLECTOR") O_ADDR=$(addr_of "$OPS")
echo "addresses: $SENSOR $S_ADDR, $COLLECTOR $C_ADDR, $OPS $O_ADDR"

say "the devices come online"
online() { hub device show "$1" --data "$DATA" --json | grep -q '"online": *true'; }
for d in "$SENSOR" "$COLLECTOR" "$OPS"; do
  if wait_until 15 online "$d"; then ok "$d is online"; else fail "$d is online"; fi
done
hub device list --data "$DATA"

say "policy: allowed traffic flows device to device, through the hub"
check "$SENSOR pings $COLLECTOR" wait_until 5 in_ns "$NS_S" ping -c 1 -W 1 "$C_ADDR"
check "$OPS pings $SENSOR" in_ns "$NS_O" ping -c 2 -W 1 "$S_ADDR"
check "$OPS pings $COLLECTOR" in_ns "$NS_O" ping -c 2 -W 1 "$C_ADDR"
head -c 20000000 /dev/urandom >"$TMP/payload"
in_ns "$NS_C" timeout 60 socat -u TCP-LISTEN:5000,reuseaddr "OPEN:$TMP/received,creat,trunc" &
sock_pid=$!
sleep 0.5
if in_ns "$NS_S" timeout 60 socat -u "FILE:$TMP/payload" "TCP:$C_ADDR:5000" && wait "$sock_pid" &&
  [ "$(sha256sum <"$TMP/payload")" = "$(sha256sum <"$TMP/received")" ]; then
  ok "$SENSOR sends 20 MB over TCP 5000 to $COLLECTOR, checksum equal"
else
  fail "$SENSOR sends 20 MB over TCP 5000 to $COLLECTOR, checksum equal"
fi

say "policy: denied traffic does not flow"
refuse "$COLLECTOR cannot ping $SENSOR (the grant is one-directional)" in_ns "$NS_C" ping -c 2 -W 1 "$S_ADDR"
# A listener on TCP 22, so that only the policy can make the connection fail.
in_ns "$NS_C" timeout 20 socat -u TCP-LISTEN:22,reuseaddr,fork OPEN:/dev/null &
pids+=($!)
sleep 0.3
check "$OPS reaches TCP 22 on $COLLECTOR (the listener answers)" in_ns "$NS_O" timeout 3 socat -u /dev/null "TCP:$C_ADDR:22,connect-timeout=2"
refuse "$SENSOR cannot reach TCP 22 on $COLLECTOR" in_ns "$NS_S" timeout 3 socat -u /dev/null "TCP:$C_ADDR:22,connect-timeout=2"
refuse "$SENSOR cannot ping $OPS" in_ns "$NS_S" ping -c 2 -W 1 "$O_ADDR"

say "anti-spoofing: a packet from an address the device does not own is dropped"
ip -n "$NS_S" addr add 10.64.200.200/32 dev "$IF_S"
refuse "$SENSOR pinging from 10.64.200.200 (not its address) gets no answer" in_ns "$NS_S" ping -c 2 -W 1 -I 10.64.200.200 "$C_ADDR"
check "$SENSOR pinging from its own address still works" in_ns "$NS_S" ping -c 1 -W 1 "$C_ADDR"

say "site subnets: two sites that both use 192.168.1.0/24, reached as 10.201.1.0/24 and 10.201.2.0/24"
hub device approve-route "$SENSOR" 192.168.1.0/24 --map 10.201.1.0/24 --data "$DATA" >/dev/null
hub device approve-route "$COLLECTOR" 192.168.1.0/24 --map 10.201.2.0/24 --data "$DATA" >/dev/null
# The ops device routes the mapped prefixes into its tunnel (a fresh config from the hub lists them).
hub_key=$(sed -n 's/^PublicKey = //p' "$TMP/ops/$IF_O.conf")
in_ns "$NS_O" wg set "$IF_O" peer "$hub_key" allowed-ips 10.64.0.0/16,fd64::/64,10.201.1.0/24,10.201.2.0/24
ip -n "$NS_O" route add 10.201.0.0/16 dev "$IF_O"
sleep 1.5
check "$OPS reaches 192.168.1.10 behind $SENSOR as 10.201.1.10" wait_until 5 in_ns "$NS_O" ping -c 1 -W 1 10.201.1.10
check "$OPS reaches 192.168.1.20 behind $COLLECTOR as 10.201.2.20" in_ns "$NS_O" ping -c 2 -W 1 10.201.2.20
refuse "10.201.1.20 is not at $SENSOR's site" in_ns "$NS_O" ping -c 2 -W 1 10.201.1.20

say "key rotation: $COLLECTOR rotates its key while $SENSOR pings it 100 times a second"
old_key=$(hub device show "$COLLECTOR" --data "$DATA" --json | grep -o '"public_key": *"[^"]*"' | cut -d'"' -f4)
in_ns "$NS_S" ping -i 0.01 -W 1 -c 800 "$C_ADDR" >"$TMP/rotation-ping.log" 2>&1 &
ping_pid=$!
sleep 2
new_key=$(in_ns "$NS_C" "$FERROWG" key rotate "$IF_C" --config-dir "$TMP/collector" 2>"$TMP/rotate.err") || cat "$TMP/rotate.err"
wait "$ping_pid" || true
rotated() { [ "$(hub device show "$COLLECTOR" --data "$DATA" --json | grep -o '"public_key": *"[^"]*"' | cut -d'"' -f4)" = "$new_key" ]; }
if [ -n "$new_key" ] && [ "$new_key" != "$old_key" ] && wait_until 10 rotated; then
  ok "$COLLECTOR's current key in the hub is its new key"
else
  fail "$COLLECTOR's current key in the hub is its new key"
fi
received=$(grep -o '[0-9]* received' "$TMP/rotation-ping.log" | cut -d' ' -f1)
echo "pings across the rotation: 800 sent, ${received:-0} received"
if [ "${received:-0}" -eq 800 ]; then ok "no ping lost across the rotation"; else fail "no ping lost across the rotation"; fi
check "$SENSOR still reaches $COLLECTOR after the old key is gone" in_ns "$NS_S" ping -c 1 -W 1 "$C_ADDR"

say "revocation cuts a device off within a second"
in_ns "$NS_S" ping -D -i 0.1 -W 1 -c 600 "$C_ADDR" >"$TMP/ping.log" 2>&1 &
ping_pid=$!
sleep 1
revoked_at=$(date +%s.%N)
hub device revoke "$SENSOR" --data "$DATA" >/dev/null
sleep 2
kill "$ping_pid" 2>/dev/null || true
wait "$ping_pid" 2>/dev/null || true
# ping -D stamps each reply with the Unix time: the last reply after the revoke command started.
last_reply=$(grep -o '^\[[0-9.]*\] 64 bytes' "$TMP/ping.log" | tail -1 | tr -d '[]' | cut -d' ' -f1)
cut_after=$(awk -v a="$revoked_at" -v b="${last_reply:-0}" 'BEGIN { d = b - a; if (d < 0) d = 0; printf "%.2f", d }')
echo "last reply $cut_after s after the revoke command started (replies before it: $(grep -c '64 bytes' "$TMP/ping.log"))"
if [ -n "$last_reply" ] && awk -v d="$cut_after" 'BEGIN { exit !(d <= 1.0) }'; then
  ok "$SENSOR cut off within 1 s of the revocation"
else
  fail "$SENSOR cut off within 1 s of the revocation"
fi
refuse "$SENSOR cannot ping $COLLECTOR after its revocation" in_ns "$NS_S" ping -c 2 -W 1 "$C_ADDR"
check "$OPS still reaches $COLLECTOR" in_ns "$NS_O" ping -c 1 -W 1 "$C_ADDR"
revoked() { hub device show "$SENSOR" --data "$DATA" --json | grep -q '"state": *"revoked"'; }
check "$SENSOR is shown revoked" revoked

say "the hub forwarded everything itself: ip_forward in its namespace is $(in_ns "$NS_HUB" sysctl -n net.ipv4.ip_forward)"
hub device list --data "$DATA"
if [ "$failures" -ne 0 ]; then
  echo
  echo "the hub's log:"
  tail -n 40 "$TMP/hub.log"
  echo "demo-hub.sh: $failures check(s) failed"
  exit 1
fi
echo
echo "demo-hub.sh: every check passed"
