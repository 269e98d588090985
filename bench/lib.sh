# bench/lib.sh — helpers shared by tunnel.sh and peers.sh; sourced, not run.
#
# What lives here: the list of WireGuard implementations and how to start each one, the
# two-namespace veth topology, daemon start/stop, readers for /proc (CPU ticks, RSS, UDP drop
# counters), small number helpers, and the writer that replaces one script's section of
# RESULTS.md. Everything a script creates is registered here so that `bench_cleanup` (an EXIT
# trap) can remove it even when the script fails half-way.
#
# Topology (NS_A / NS_B are unique per run: the script's prefix plus $$):
#
#   +------------------ NS_A ------------------+        +------------------ NS_B ------------------+
#   | <tunnel ifaces> 10.241.K.1/24  (MTU 1420)|        | <tunnel ifaces> 10.241.K.2/24  (MTU 1420)|
#   |        | UDP 192.168.241.1:5182K         |        |        | UDP 192.168.241.2:5182K         |
#   | VETH_A 192.168.241.1/24                  |<-veth->| VETH_B 192.168.241.2/24                  |
#   +------------------------------------------+        +------------------------------------------+
#
# K is the implementation's slot (1..4), so the tunnels of all implementations can be up at the
# same time without sharing a subnet, a UDP port or an interface name. Interface names carry $$
# as well, because every namespace shares /var/run/wireguard for the UAPI sockets.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
UAPI_DIR=/var/run/wireguard
CLK_TCK=$(getconf CLK_TCK)
UNDER_A=192.168.241.1
UNDER_B=192.168.241.2
TUNNEL_MTU=1420

# Implementations in table order; the slot (index + 1) picks subnet, port and interface names.
# ferrowg-ring is ferrowg with --aead=ring: every datagram through ring, without the AVX-512
# batch AEAD (crates/ferrowg-daemon/src/crypto.rs), so one run shows what that backend is worth. It is
# not a reference: the ratio row ignores it. peers.sh leaves it out (PEER_IMPLS).
# ferrowg-base is another build of ferrowg (FERROWG_BASE=path), started the same way, so that a
# change is measured against the code before it in one interleaved run; it is not a reference
# either, and gets a ratio row of its own (ferrowg / ferrowg-base).
ALL_IMPLS=(ferrowg ferrowg-ring ferrowg-base wireguard-go boringtun gotatun)
PEER_IMPLS=(ferrowg wireguard-go boringtun gotatun)

# Binaries. FERROWG is resolved against the caller's working directory when given, and against
# the repository root by default, so the script works from anywhere.
if [[ -n ${FERROWG:-} ]]; then
	FERROWG=$(realpath -ms -- "$FERROWG")
else
	FERROWG=$REPO_DIR/target/release/ferrowg
fi
FERROWG_BASE=${FERROWG_BASE:+$(realpath -ms -- "$FERROWG_BASE")}
# What tunnel.sh runs when BENCH_IMPLS is not set: ferrowg-base only when FERROWG_BASE names it.
TUNNEL_IMPLS=()
for impl in "${ALL_IMPLS[@]}"; do
	[[ $impl == ferrowg-base && -z $FERROWG_BASE ]] || TUNNEL_IMPLS+=("$impl")
done
WIREGUARD_GO=${WIREGUARD_GO:-$(command -v wireguard-go || echo /usr/bin/wireguard-go)}
BORINGTUN=${BORINGTUN:-$(command -v boringtun-cli || echo "$HOME/.cargo/bin/boringtun-cli")}
GOTATUN=${GOTATUN:-$(command -v gotatun || echo "$HOME/.cargo/bin/gotatun")}

# Cleanup registry.
BENCH_PIDS=()
BENCH_NETNS=()
BENCH_IFACES=()
BENCH_TMP=""
UAPI_DIR_EXISTED=0
[[ -d $UAPI_DIR ]] && UAPI_DIR_EXISTED=1

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# ---------------------------------------------------------------------------------------------
# Implementations
# ---------------------------------------------------------------------------------------------

impl_slot() {
	local i
	for i in "${!ALL_IMPLS[@]}"; do
		[[ ${ALL_IMPLS[$i]} == "$1" ]] && {
			echo $((i + 1))
			return 0
		}
	done
	die "unknown implementation '$1' (known: ${ALL_IMPLS[*]})"
}

impl_tag() {
	case $1 in
	ferrowg) echo fg ;;
	ferrowg-ring) echo fgr ;;
	ferrowg-base) echo fgb ;;
	wireguard-go) echo wgo ;;
	boringtun) echo bt ;;
	gotatun) echo gt ;;
	esac
}

impl_bin() {
	case $1 in
	ferrowg | ferrowg-ring) echo "$FERROWG" ;;
	ferrowg-base) echo "${FERROWG_BASE:-/nonexistent/FERROWG_BASE-not-set}" ;;
	wireguard-go) echo "$WIREGUARD_GO" ;;
	boringtun) echo "$BORINGTUN" ;;
	gotatun) echo "$GOTATUN" ;;
	esac
}

impl_label() {
	case $1 in
	boringtun) echo boringtun-cli ;;
	ferrowg-ring) echo "ferrowg, ring only (--aead=ring)" ;;
	ferrowg-base) echo "ferrowg, base build (FERROWG_BASE)" ;;
	veth) echo "bare veth (no tunnel)" ;;
	*) echo "$1" ;;
	esac
}

impl_available() { [[ -x $(impl_bin "$1") ]]; }

# impl_check IMPL: whether IMPL can be run. Records its version in VERSION[IMPL], or why it is
# not run in NOTE[IMPL] (associative arrays the calling script declares); dies on an unknown
# name. Call it after setup_netns (impl_version runs inside NS_A).
impl_check() {
	impl_slot "$1" >/dev/null
	if ! impl_available "$1"; then
		NOTE[$1]="not run: $(impl_bin "$1") not found"
		log "$1: ${NOTE[$1]}"
		return 1
	fi
	VERSION[$1]=$(impl_version "$1")
}

# impl_versions IMPL...: the report's "Versions" list, one line per implementation (its version,
# or why it was not run), without the closing line of tool versions each script adds.
impl_versions() {
	local impl
	echo "- Versions:"
	for impl in "$@"; do
		echo "  - $(impl_label "$impl"): ${VERSION[$impl]:-${NOTE[$impl]:-}}"
	done
}

# One line of version text. Run inside NS_A with a timeout: a binary that takes an unknown
# flag for an interface name (wireguard-go does with --help) then only touches our namespace,
# and anything it leaves running there is killed by bench_cleanup.
impl_version() {
	local bin out
	bin=$(impl_bin "$1")
	out=$(timeout 5 ip netns exec "$NS_A" "$bin" --version 2>&1 | grep -m1 -iE 'v?[0-9]+\.[0-9]+' || true)
	echo "${out:-unknown} ($bin)"
}

# start_daemon IMPL NS IFACE LOGFILE: starts one daemon in the foreground as a child of this
# shell (so `wait` works and $! is the daemon itself: `ip netns exec` and `env` both exec),
# waits for its UAPI socket and TUN device, and sets DAEMON_PID.
start_daemon() {
	local impl=$1 ns=$2 iface=$3 logf=$4 bin i
	bin=$(impl_bin "$impl")
	[[ -e $UAPI_DIR/$iface.sock ]] && die "$UAPI_DIR/$iface.sock already exists (name clash?)"
	BENCH_IFACES+=("$iface")
	case $impl in
	ferrowg | ferrowg-base)
		ip netns exec "$ns" "$bin" daemon --foreground "$iface" >"$logf" 2>&1 &
		;;
	ferrowg-ring)
		ip netns exec "$ns" "$bin" daemon --foreground --aead=ring "$iface" >"$logf" 2>&1 &
		;;
	wireguard-go)
		ip netns exec "$ns" env LOG_LEVEL=error "$bin" -f "$iface" >"$logf" 2>&1 &
		;;
	boringtun)
		ip netns exec "$ns" env WG_SUDO=1 "$bin" --foreground --disable-drop-privileges \
			--verbosity error --log "$logf.file" "$iface" >"$logf" 2>&1 &
		;;
	gotatun)
		ip netns exec "$ns" env WG_SUDO=1 "$bin" --foreground --disable-drop-privileges \
			--verbosity error --log "$logf.file" "$iface" >"$logf" 2>&1 &
		;;
	*) die "start_daemon: unknown implementation $impl" ;;
	esac
	DAEMON_PID=$!
	BENCH_PIDS+=("$DAEMON_PID")
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			log "$impl exited during start-up; its log:"
			tail -n 20 "$logf" >&2 || true
			return 1
		fi
		if [[ -S $UAPI_DIR/$iface.sock ]] && ip -n "$ns" link show "$iface" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	log "$impl: no UAPI socket or TUN device for $iface after 10 s; its log:"
	tail -n 20 "$logf" >&2 || true
	return 1
}

# stop_daemon PID IFACE: SIGTERM, then SIGKILL after 5 s; removes a socket left behind.
stop_daemon() {
	local pid=$1 iface=$2 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid ($iface) ignored SIGTERM for 5 s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	if [[ -e $UAPI_DIR/$iface.sock ]]; then
		STALE_SOCKETS+=("$iface")
		rm -f "$UAPI_DIR/$iface.sock"
	fi
}
STALE_SOCKETS=()

# write_wg_conf FILE PRIVKEY PORT [PEER_PUBKEY ALLOWED ENDPOINT]: a wg(8) setconf file.
write_wg_conf() {
	local f=$1
	{
		printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n' "$2" "$3"
		if [[ $# -ge 6 ]]; then
			printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\nEndpoint = %s\n' "$4" "$5" "$6"
		fi
	} >"$f"
}

# configure_iface NS IFACE CONF ADDR/PREFIX: stock `wg setconf` over the UAPI socket, then
# address, MTU and link up.
configure_iface() {
	local ns=$1 iface=$2 conf=$3 addr=$4
	timeout 30 ip netns exec "$ns" wg setconf "$iface" "$conf" || return 1
	ip -n "$ns" addr add "$addr" dev "$iface" || return 1
	ip -n "$ns" link set "$iface" mtu "$TUNNEL_MTU" up || return 1
}

# wait_handshake DST: pings from NS_A until one reply (up to ~10 s).
wait_handshake() {
	local i
	for ((i = 0; i < 10; i++)); do
		ip netns exec "$NS_A" ping -c 1 -W 1 -q "$1" >/dev/null 2>&1 && return 0
	done
	return 1
}

# ---------------------------------------------------------------------------------------------
# Namespaces and cleanup
# ---------------------------------------------------------------------------------------------

# link_veth NS_X DEV_X ADDR_X NS_Y DEV_Y ADDR_Y: a veth pair DEV_X (in NS_X, ADDR_X/24) -- DEV_Y
# (in NS_Y, ADDR_Y/24), both up with their loopbacks; dies unless NS_X reaches ADDR_Y.
link_veth() {
	local nx=$1 dx=$2 ax=$3 ny=$4 dy=$5 ay=$6
	ip link add "$dx" netns "$nx" type veth peer name "$dy" netns "$ny"
	ip -n "$nx" link set lo up
	ip -n "$ny" link set lo up
	ip -n "$nx" addr add "$ax/24" dev "$dx"
	ip -n "$ny" addr add "$ay/24" dev "$dy"
	ip -n "$nx" link set "$dx" up
	ip -n "$ny" link set "$dy" up
	ip netns exec "$nx" ping -c 1 -W 2 -q "$ay" >/dev/null || die "veth pair $nx-$ny does not pass traffic"
}

# setup_netns PREFIX: NS_A, NS_B joined by a veth pair with the underlay addresses.
setup_netns() {
	local p=$1
	NS_A=${p}A$$ NS_B=${p}B$$ VETH_A=${p}a$$ VETH_B=${p}b$$
	ip netns add "$NS_A"
	BENCH_NETNS+=("$NS_A")
	ip netns add "$NS_B"
	BENCH_NETNS+=("$NS_B")
	link_veth "$NS_A" "$VETH_A" "$UNDER_A" "$NS_B" "$VETH_B" "$UNDER_B"
}

# bench_topology PREFIX: setup_netns PREFIX, the iperf3 server in NS_B, and a key pair for each
# end (KEY_A and PUB_A for NS_A, KEY_B and PUB_B for NS_B).
bench_topology() {
	setup_netns "$1"
	start_iperf_server
	KEY_A=$(wg genkey)
	KEY_B=$(wg genkey)
	PUB_A=$(wg pubkey <<<"$KEY_A")
	PUB_B=$(wg pubkey <<<"$KEY_B")
}

# bench_cleanup: the EXIT trap. Kills what we started (by pid, then whatever still runs inside
# our namespaces), deletes the namespaces (and with them the veth pair and TUN devices),
# removes our UAPI sockets and the temporary directory.
bench_cleanup() {
	local rc=$? pid ns iface i alive
	set +e
	trap - EXIT INT TERM
	for pid in "${BENCH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for ((i = 0; i < 50; i++)); do
		alive=0
		for pid in "${BENCH_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for pid in "${BENCH_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	for ns in "${BENCH_NETNS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
	done
	wait 2>/dev/null
	for ns in "${BENCH_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	for iface in "${BENCH_IFACES[@]}"; do rm -f "$UAPI_DIR/$iface.sock"; done
	if ((!UAPI_DIR_EXISTED)); then rmdir "$UAPI_DIR" 2>/dev/null; fi
	[[ -n $BENCH_TMP ]] && rm -rf "$BENCH_TMP"
	exit "$rc"
}

bench_init() {
	[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, TUN devices)"
	local t
	for t in ip wg iperf3 jq ping awk timeout realpath; do
		command -v "$t" >/dev/null || die "missing tool: $t"
	done
	BENCH_TMP=$(mktemp -d /tmp/ferrowg-bench.XXXXXX)
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# ---------------------------------------------------------------------------------------------
# iperf3 server in NS_B
# ---------------------------------------------------------------------------------------------

IPERF_SERVER_PID=""
start_iperf_server() {
	local i
	ip netns exec "$NS_B" iperf3 -s -p 5201 --idle-timeout 60 >"$BENCH_TMP/iperf3-server.log" 2>&1 &
	IPERF_SERVER_PID=$!
	BENCH_PIDS+=("$IPERF_SERVER_PID")
	for ((i = 0; i < 50; i++)); do
		ip netns exec "$NS_B" ss -Hltn 'sport = :5201' | grep -q . && return 0
		sleep 0.1
	done
	die "iperf3 server did not start"
}

restart_iperf_server() {
	if [[ -n $IPERF_SERVER_PID ]]; then
		kill -TERM "$IPERF_SERVER_PID" 2>/dev/null || true
		wait "$IPERF_SERVER_PID" 2>/dev/null || true
	fi
	start_iperf_server
}

# TCP congestion control of every iperf3 TCP run (BENCH_TCP_CC; "default" = the system's): the
# same for every implementation whatever the machine's default is. This VM's default has been
# bbr, whose pacing timers cost a tunnel here 2-3x its cubic throughput, so that results taken
# under different defaults were not comparable.
TCP_CC=${BENCH_TCP_CC:-cubic}

# iperf_client OUT SECONDS ARGS...: bounded iperf3 client run in NS_A, JSON to OUT. On failure
# restarts the server (a killed client can leave it busy) and returns 1.
iperf_client() {
	local out=$1 secs=$2 extra=()
	shift 2
	[[ " $* " != *" -u "* && $TCP_CC != default ]] && extra+=(-C "$TCP_CC")
	# iperf3 accepts a receive timeout only when the client receives (-R).
	[[ " $* " == *" -R "* ]] && extra+=(--rcv-timeout 10000)
	if timeout $((secs + 30)) ip netns exec "$NS_A" iperf3 -p 5201 -J --connect-timeout 5000 \
		"${extra[@]}" -t "$secs" "$@" >"$out" 2>"$out.err" &&
		jq -e '.error == null' "$out" >/dev/null 2>&1; then
		return 0
	fi
	log "iperf3 $* failed: $(jq -r '.error // empty' "$out" 2>/dev/null) $(tail -c 300 "$out.err")"
	restart_iperf_server
	return 1
}

# ---------------------------------------------------------------------------------------------
# /proc readers
# ---------------------------------------------------------------------------------------------

# utime+stime of the whole process (all threads), in clock ticks.
cpu_ticks() {
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# proc_status_kib PID FIELD: VmRSS, VmHWM, ... in KiB.
proc_status_kib() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# udp_rcvbuf_errors NS: Udp RcvbufErrors from /proc/net/snmp as seen inside NS.
udp_rcvbuf_errors() {
	ip netns exec "$1" cat /proc/net/snmp | awk '
		$1 == "Udp:" && !h { for (i = 2; i <= NF; i++) idx[$i] = i; h = 1; next }
		$1 == "Udp:" && h { print $idx["RcvbufErrors"]; exit }'
}

# udp_port_drops NS PORT: summed "drops" of the UDP sockets bound to PORT (IPv4 and IPv6).
udp_port_drops() {
	local hex
	hex=$(printf '%04X' "$2")
	ip netns exec "$1" cat /proc/net/udp /proc/net/udp6 | awk -v p=":$hex" '
		$1 != "sl" && substr($2, length($2) - 4) == p { s += $NF } END { print s + 0 }'
}

# tun_dropped NS IFACE tx|rx: the interface's dropped counter. On a TUN device, tx dropped
# counts packets the kernel could not queue for the daemon (it did not read fast enough).
tun_dropped() {
	ip -n "$1" -s -j link show dev "$2" 2>/dev/null | jq -r ".[0].stats64.$3.dropped // 0" 2>/dev/null || echo 0
}

# udp_port_bufs NS PORT: "rb/tb" socket buffer sizes (bytes, largest over the sockets on PORT).
udp_port_bufs() {
	ip netns exec "$1" ss -Huamn "sport = :$2" 2>/dev/null | grep -oE 'rb[0-9]+,t[0-9]+,tb[0-9]+' |
		awk -F'[,a-z]+' '{ if ($2 > rb) rb = $2; if ($4 > tb) tb = $4 } END { printf "%d/%d", rb, tb }'
}

# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------

now() { date +%s.%N; }
# fcalc EXPR [FORMAT]: floating-point arithmetic through awk (EXPR is parenthesised, so a
# comparison prints 0 or 1 instead of redirecting printf to a file).
fcalc() { awk "BEGIN { printf \"${2:-%.6f}\", ($1) }"; }
# median / min / max of whitespace-separated numbers.
stat_of() {
	tr ' ' '\n' | awk -v what="$1" 'NF { v[n++] = $1 } END {
		if (n == 0) { print ""; exit }
		asort_n(v, n)
		if (what == "median") print (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
		else if (what == "min") print v[0]
		else if (what == "max") print v[n - 1]
	}
	function asort_n(a, n,   i, j, t) {
		for (i = 1; i < n; i++) for (j = i; j > 0 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	}'
}

# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------

# md_table: reads TSV (first line = header) and prints an aligned markdown table.
md_table() {
	awk -F '\t' '
		{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } if (NF > nf) nf = NF }
		END {
			for (r = 1; r <= NR; r++) {
				line = "|"
				for (i = 1; i <= nf; i++) line = line sprintf(" %-" w[i] "s |", c[r, i])
				print line
				if (r == 1) {
					line = "|"
					for (i = 1; i <= nf; i++) { d = ""; for (k = 0; k < w[i]; k++) d = d "-"; line = line " " d " |" }
					print line
				}
			}
		}'
}

machine_info() {
	local cpu mem
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	printf -- '- CPU: %s, %s logical cores (`nproc`)\n' "$cpu" "$(nproc)"
	printf -- '- Memory: %s\n' "$mem"
	printf -- '- Kernel: `%s` — /proc/version: `%s`\n' "$(uname -srm)" "$(cat /proc/version)"
	printf -- '- TCP congestion control of the iperf3 runs: %s (system default: %s; `BENCH_TCP_CC`)\n' \
		"$TCP_CC" "$(cat /proc/sys/net/ipv4/tcp_congestion_control 2>/dev/null || echo unknown)"
}

# write_section FILE NAME CONTENT_FILE: replaces the block between NAME's markers in FILE (or
# adds it), so tunnel.sh and peers.sh each rewrite only their own part. Sections are kept in a
# fixed order (tunnel, peers, then any others) whichever script ran last.
write_section() {
	local file=$1 name=$2 content=$3
	if [[ ! -f $file ]]; then
		printf '# ferrowg benchmark results\n\nWritten by the scripts in this directory (see README.md for how to run them and\nwhat every column means). Each section is replaced when its script runs again.\n' >"$file"
	fi
	awk -v name="$name" -v f="$content" '
		function emit(s) { printf "\n<!-- %s:begin -->\n%s<!-- %s:end -->\n", s, body[s], s }
		/^<!-- [a-z]+:begin -->$/ { cur = $2; sub(/:begin$/, "", cur); if (!(cur in seen)) { seen[cur] = 1; order[n++] = cur } body[cur] = ""; next }
		/^<!-- [a-z]+:end -->$/ { cur = ""; next }
		cur != "" { body[cur] = body[cur] $0 "\n"; next }
		{ pre = pre $0 "\n" }
		END {
			body[name] = ""
			while ((getline l < f) > 0) body[name] = body[name] l "\n"
			if (!(name in seen)) { seen[name] = 1; order[n++] = name }
			sub(/\n+$/, "\n", pre)
			printf "%s", pre
			if ("tunnel" in seen) emit("tunnel")
			if ("peers" in seen) emit("peers")
			for (i = 0; i < n; i++) if (order[i] != "tunnel" && order[i] != "peers") emit(order[i])
		}' "$file" >"$file.tmp.$$"
	mv "$file.tmp.$$" "$file"
}

# The command line as typed, with the environment variables that change what is measured.
command_line() {
	local v envs=()
	for v in $(compgen -e | grep -E '^(BENCH_|PEERS_|FLOOD_|SOAK_|FERROWG$|FERROWG_BASE$|WG_FLOOD$|WIREGUARD_GO$|BORINGTUN$|GOTATUN$)' || true); do
		envs+=("$v=$(printf '%q' "${!v}")")
	done
	printf '%s' "${envs[*]:+${envs[*]} }"
	printf '%q ' "$0" "$@" | sed 's/ $//'
}
