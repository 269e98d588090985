# Shared by the hub scripts (scripts/demo-hub.sh, scripts/test-hub-lifecycle.sh): checks that
# count failures, bounded waits, namespaces, and a SoftHSM2 token of the script's own. Source it
# after setting `failures=0`; the caller owns cleanup.

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
say() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; failures=$((failures + 1)); }
# check WHAT CMD...: CMD must succeed.
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi; }
# refuse WHAT CMD...: CMD must fail.
refuse() { local what=$1; shift; if "$@" >/dev/null 2>&1; then fail "$what"; else ok "$what"; fi; }
# wait_until SECONDS CMD...: runs CMD every 0.2 s until it succeeds; fails after SECONDS.
wait_until() {
  local limit=$(( $1 * 5 )); shift
  for _ in $(seq "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
# require_root_and NAME TOOL...: exits 2 unless run as root with every TOOL installed.
require_root_and() {
  local name=$1; shift
  if [ "$(id -u)" -ne 0 ]; then
    echo "$name: run as root (it creates network namespaces and TUN devices)" >&2
    exit 2
  fi
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$name: $tool is not installed" >&2; exit 2; }
  done
}
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
# softhsm_available: SoftHSM2's tool and module are installed.
softhsm_available() { command -v softhsm2-util >/dev/null && [ -e "$SOFTHSM_MODULE" ]; }
# softhsm_token DIR LABEL: a new SoftHSM2 token LABEL whose files live in DIR (SOFTHSM2_CONF is
# exported), its PIN in DIR/pin; sets SOFTHSM_QUERY to the URI query that names the module and
# the PIN file (`?module-path=…&pin-source=file:…`), to follow `pkcs11:token=LABEL;object=NAME`.
softhsm_token() {
  local dir=$1 label=$2
  mkdir -p "$dir/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir/tokens" >"$dir/softhsm2.conf"
  export SOFTHSM2_CONF=$dir/softhsm2.conf
  softhsm2-util --init-token --free --label "$label" --pin 1234 --so-pin 5678 >/dev/null
  (umask 077; printf '1234' >"$dir/pin")
  SOFTHSM_QUERY="?module-path=$SOFTHSM_MODULE&pin-source=file:$dir/pin"
}
