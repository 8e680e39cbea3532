#!/usr/bin/env bash
# The experiment with curl alone: two sandboxes, a network with an explicit subnet, connect
# both (the second with a static IP), inspect, ping between them, disconnect, clean up.
#
#   NETBRIDGE_SOCKET  Unix socket of the daemon            (default /run/netbridge.sock)
#   NETBRIDGE_TCP     ADDR:PORT: talk TCP instead, e.g. 127.0.0.1:2375 (the daemon's --tcp)
#   NETBRIDGE_TOKEN   bearer token for TCP (one of the daemon's --token-file lines)
#   NETBRIDGE_PREFIX  prefix of the sandbox and network names  (default demo)
#   NETBRIDGE_SUBNET  subnet of the network                 (default 172.30.0.0/24)
#   NETBRIDGE_IP      static IP of the second sandbox       (default 172.30.0.20)
#
# The ping step uses `ip netns exec` and so needs root; without root it is skipped, saying so.
set -euo pipefail

SOCKET=${NETBRIDGE_SOCKET:-/run/netbridge.sock}
PREFIX=${NETBRIDGE_PREFIX:-demo}
SUBNET=${NETBRIDGE_SUBNET:-172.30.0.0/24}
STATIC_IP=${NETBRIDGE_IP:-172.30.0.20}
A="$PREFIX-a" B="$PREFIX-b" NET="$PREFIX-net"

if [ -n "${NETBRIDGE_TCP:-}" ]; then
    BASE="http://$NETBRIDGE_TCP" CURL=(curl -sS)
    if [ -n "${NETBRIDGE_TOKEN:-}" ]; then
        # from a file, so that the token never shows in the process list
        header_file=$(mktemp)
        printf 'Authorization: Bearer %s\n' "$NETBRIDGE_TOKEN" >"$header_file"
        CURL+=(-H "@$header_file")
    fi
    echo "== talking to http://$NETBRIDGE_TCP"
else
    BASE="http://localhost" CURL=(curl -sS --unix-socket "$SOCKET")
    echo "== talking to unix://$SOCKET"
fi

# api METHOD PATH [JSON] -> prints the body; fails unless the status is 2xx.
api() {
    local method=$1 path=$2 body=${3:-} out status
    local args=(-X "$method" -w '\n%{http_code}')
    if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' -d "$body"); fi
    out=$("${CURL[@]}" "${args[@]}" "$BASE$path")
    status=${out##*$'\n'}
    out=${out%$'\n'*}
    if [ "${status:0:1}" != 2 ]; then
        echo "$method $path -> $status $out" >&2
        return 1
    fi
    printf '%s' "$out"
}

# Whatever happens, the sandboxes and the network go (404s are fine here).
finished=
on_exit() {
    if [ -z "$finished" ]; then
        "${CURL[@]}" -o /dev/null -X DELETE "$BASE/containers/$A?force=1" || true
        "${CURL[@]}" -o /dev/null -X DELETE "$BASE/containers/$B?force=1" || true
        "${CURL[@]}" -o /dev/null -X DELETE "$BASE/networks/$NET" || true
    fi
    if [ -n "${header_file:-}" ]; then rm -f "$header_file"; fi
}
trap on_exit EXIT

echo "== ping: $(api GET /_ping)"

echo "== two sandboxes: $A, $B"
api POST "/containers/create?name=$A" '{}'; echo
api POST "/containers/create?name=$B" '{}'; echo

echo "== network $NET with subnet $SUBNET"
api POST /networks/create "{\"Name\":\"$NET\",\"IPAM\":{\"Config\":[{\"Subnet\":\"$SUBNET\"}]}}"
echo

echo "== connect $A (automatic address) and $B (static $STATIC_IP)"
api POST "/networks/$NET/connect" "{\"Container\":\"$A\"}"
api POST "/networks/$NET/connect" \
    "{\"Container\":\"$B\",\"EndpointConfig\":{\"IPAMConfig\":{\"IPv4Address\":\"$STATIC_IP\"}}}"

echo "== inspect $NET"
inspect=$(api GET "/networks/$NET")
echo "$inspect"
for name in "$A" "$B"; do
    grep -q "\"Name\":\"$name\"" <<<"$inspect" || { echo "FAIL: $name not in $NET" >&2; exit 1; }
done
grep -q "\"IPv4Address\":\"$STATIC_IP/" <<<"$inspect" ||
    { echo "FAIL: $STATIC_IP not in $NET" >&2; exit 1; }

# The automatic address of A, from its container inspect (NetworkSettings.Networks.<net>).
ip_a=$(api GET "/containers/$A/json" | grep -o '"IPAddress":"[0-9.]\+"' | head -n1 | cut -d'"' -f4)
[ -n "$ip_a" ] || { echo "FAIL: no address for $A" >&2; exit 1; }
echo "== $A has $ip_a, $B has $STATIC_IP"

if [ "$(id -u)" = 0 ]; then
    echo "== ping $A -> $B and $B -> $A"
    ip netns exec "$A" ping -c1 -W2 "$STATIC_IP"
    ip netns exec "$B" ping -c1 -W2 "$ip_a"
else
    echo "== skipping ping: ip netns exec needs root"
fi

echo "== disconnect $A"
api POST "/networks/$NET/disconnect" "{\"Container\":\"$A\"}"
if api GET "/networks/$NET" | grep -q "\"Name\":\"$A\""; then
    echo "FAIL: $A still on $NET after disconnect" >&2
    exit 1
fi

echo "== clean up"
api DELETE "/containers/$A?force=1"
api DELETE "/containers/$B?force=1"
api DELETE "/networks/$NET"
finished=1
echo "== done"
