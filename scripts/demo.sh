#!/usr/bin/env bash
# A real WireGuard tunnel between two network namespaces, ferrowg on both ends:
#
#   netns fwdemo-a-$$                          netns fwdemo-b-$$
#   fwda$$  10.77.0.1/24, fd77::1/64           fwdb$$  10.77.0.2/24, fd77::2/64
#      \__ UDP 51820 over veth  192.0.2.1 ------ 192.0.2.2 __/
#
# Builds ferrowg (release), configures both ends with wg-quick-style files via `ferrowg up`,
# pings across the tunnel over IPv4 and IPv6, prints `ferrowg show`, and removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh needs root (it creates network namespaces)" >&2; exit 1; }

cargo build --release -q -p ferrowg
FWG=$PWD/target/release/ferrowg
A=fwdemo-a-$$ B=fwdemo-b-$$ IA=fwda$$ IB=fwdb$$
TMP=$(mktemp -d)
cleanup() {
  ip netns exec "$A" "$FWG" down "$TMP/$IA.conf" >/dev/null 2>&1 || true
  ip netns exec "$B" "$FWG" down "$TMP/$IB.conf" >/dev/null 2>&1 || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

ip netns add "$A"; ip netns add "$B"
ip link add va$$ netns "$A" type veth peer name vb$$ netns "$B"
ip -n "$A" addr add 192.0.2.1/24 dev va$$; ip -n "$A" link set va$$ up; ip -n "$A" link set lo up
ip -n "$B" addr add 192.0.2.2/24 dev vb$$; ip -n "$B" link set vb$$ up; ip -n "$B" link set lo up

KA=$("$FWG" genkey); KB=$("$FWG" genkey)
PA=$(echo "$KA" | "$FWG" pubkey); PB=$(echo "$KB" | "$FWG" pubkey)
# conf N KEY PEER PEER_PUBKEY [ENDPOINT]: the wg-quick file of the end with host number N, whose
# one peer is host PEER (reached at ENDPOINT when given).
conf() {
  cat <<CONF
[Interface]
PrivateKey = $2
Address = 10.77.0.$1/24, fd77::$1/64
ListenPort = 51820

[Peer]
PublicKey = $4
AllowedIPs = 10.77.0.$3/32, fd77::$3/128
CONF
  if [ -n "${5:-}" ]; then echo "Endpoint = $5"; fi
}
umask 077
conf 1 "$KA" 2 "$PB" 192.0.2.2:51820 > "$TMP/$IA.conf"
conf 2 "$KB" 1 "$PA" > "$TMP/$IB.conf"

echo "== ferrowg up (both namespaces)"
ip netns exec "$B" "$FWG" up "$TMP/$IB.conf"
ip netns exec "$A" "$FWG" up "$TMP/$IA.conf"
echo "== ping over the tunnel"
ip netns exec "$A" ping -c 3 -W 2 10.77.0.2
ip netns exec "$A" ping -6 -c 3 -W 2 fd77::2
echo "== ferrowg show $IA (namespace $A)"
ip netns exec "$A" "$FWG" show "$IA"
echo "== ferrowg show $IB (namespace $B)"
ip netns exec "$B" "$FWG" show "$IB"
