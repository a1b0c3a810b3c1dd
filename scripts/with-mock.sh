#!/usr/bin/env bash
# Run a command against a private instance of the mock cozmox API.
#
#   bash scripts/with-mock.sh CMD [ARGS...]
#
# Starts nginx (spec/mock/) on two free 127.0.0.1 ports, HTTP and HTTPS
# (certificate from a throw-away CA), runs CMD with
#   COZMOX_BASE_URL        http://127.0.0.1:PORT
#   COZMOX_TEST_HTTPS_URL  https://127.0.0.1:PORT2
#   COZMOX_TEST_CA_FILE    PEM of the CA that signed the HTTPS certificate
#   COZMOX_TEST_ROGUE_URL  https://127.0.0.1:PORT3, a certificate for
#                          127.0.0.1/localhost from another CA (untrusted)
#   COZMOX_TEST_WRONG_HOST_URL  https://127.0.0.1:PORT4, a certificate from
#                          the CA above for the name other.example only
#   COZMOX_TEST_H2_URL     https://127.0.0.1:PORT5, the trusted certificate,
#                          HTTP/2 offered (ALPN)
#   COZMOX_TOKEN           random token the mock accepts
#   COZMOX_TEST_FIXTURES   absolute path of spec/fixtures
#   NO_PROXY, no_proxy     extended with 127.0.0.1,localhost
# then stops nginx, removes every file it made and exits with CMD's status.
# Works from any directory; everything lives in one temp dir.
# The caller's LUA_PATH, LUA_CPATH and LUA_INIT (which may lack ";;" or
# belong to another Lua) reach CMD unchanged but neither the helpers here
# (lua5.4 -E: Debian's default paths) nor the mock's nginx (its LuaJIT
# finds cjson and resty.core in its default paths).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOCK_DIR="$ROOT/spec/mock"
FIXTURES="$ROOT/spec/fixtures"

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

for tool in nginx openssl lua5.4 curl gzip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "with-mock.sh: $tool not found (run: bash scripts/deps.sh)" >&2
    exit 1
  fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cozmox-mock.XXXXXX")
nginx_pid=
bomb_pid=
cmd_pid=

# shellcheck source=scripts/procs.sh
. "$ROOT/scripts/procs.sh"

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$cmd_pid" ]; then stop_pid "$cmd_pid"; fi
  if [ -n "$nginx_pid" ]; then stop_pid "$nginx_pid"; fi
  if [ -n "$bomb_pid" ]; then
    # The generator runs in its own process group (setsid): end all of it.
    kill -TERM -- "-$bomb_pid" 2>/dev/null || true
    wait "$bomb_pid" 2>/dev/null || true
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$TMP/tmp" "$TMP/tls"

# --- the gzip bomb: 200 MiB of valid JSON ([0,0,...,0]) ----------------
# Prepared in the background (about 2 s of CPU); the route waits for it.
# "[" + 104857598 x "0," + "0]" + "\n" = 209715200 bytes.
# shellcheck disable=SC2016  # $1 expands in the inner shell
setsid bash -c '
  set -o pipefail
  block=$(printf "0,%.0s" $(seq 4096))
  { printf "["; yes "$block" | tr -d "\n" | head -c 209715196; printf "0]\n"; } |
    gzip -9 > "$1/bomb.json.gz.part" && mv "$1/bomb.json.gz.part" "$1/bomb.json.gz"
' bomb "$TMP" </dev/null >/dev/null 2>"$TMP/bomb.log" &
bomb_pid=$!

# --- throw-away CA and server certificate --------------------------------
tls="$TMP/tls"
{
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 30 \
    -subj "/CN=cozmox-lua throw-away test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tls/server.key" -out "$tls/server.csr" -subj "/CN=127.0.0.1"
  printf '%s\n' \
    "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:mock.test" > "$tls/server.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -set_serial "0x$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" -days 30 \
    -extfile "$tls/server.ext" -out "$tls/server.pem"
  # A certificate nobody trusts: same names, another CA.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tls/rogue-ca.key" -out "$tls/rogue-ca.pem" -days 30 \
    -subj "/CN=cozmox-lua rogue CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tls/rogue.key" -out "$tls/rogue.csr" -subj "/CN=127.0.0.1"
  openssl x509 -req -in "$tls/rogue.csr" -CA "$tls/rogue-ca.pem" -CAkey "$tls/rogue-ca.key" \
    -set_serial "0x$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" -days 30 \
    -extfile "$tls/server.ext" -out "$tls/rogue.pem"
  # Trusted CA, wrong name.
  printf '%s\n' \
    "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=DNS:other.example" > "$tls/other.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tls/other.key" -out "$tls/other.csr" -subj "/CN=other.example"
  openssl x509 -req -in "$tls/other.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -set_serial "0x$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" -days 30 \
    -extfile "$tls/other.ext" -out "$tls/other.pem"
} >"$TMP/openssl.log" 2>&1 || {
  echo "with-mock.sh: certificate generation failed:" >&2
  cat "$TMP/openssl.log" >&2
  exit 1
}

TOKEN="test-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"

# Five distinct free ports: bind all to port 0 at once, then release them.
free_ports() {
  lua5.4 -E -e '
    local socket = require "socket"
    local s, ports = {}, {}
    for i = 1, 5 do
      s[i] = assert(socket.bind("127.0.0.1", 0))
      ports[i] = select(2, s[i]:getsockname())
    end
    for i = 1, 5 do s[i]:close() end
    print(table.concat(ports, " "))'
}

# render TEMPLATE OUT NAME=VALUE...: replace each @NAME@.
render() {
  lua5.4 -E - "$@" <<'LUA'
local src, dst = arg[1], arg[2]
local vars = {}
for i = 3, #arg do
  local k, v = arg[i]:match("^([%w_]+)=(.*)$")
  vars[k] = v
end
local f = assert(io.open(src, "rb")); local text = f:read("a"); f:close()
text = text:gsub("@([%w_]+)@", function(k)
  return vars[k] or error("no value for @" .. k .. "@ in " .. src)
end)
f = assert(io.open(dst, "wb")); f:write(text); f:close()
LUA
}

user_line=
if [ "$(id -u)" = 0 ]; then user_line="user root;"; fi

export COZMOX_TOKEN="$TOKEN"
export COZMOX_TEST_FIXTURES="$FIXTURES"
export COZMOX_TEST_CA_FILE="$tls/ca.pem"
export COZMOX_MOCK_TMP="$TMP"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

# health URL -> true when the mock answers 200 there
answers() {
  curl --noproxy '*' -sf -o /dev/null --max-time 2 --cacert "$tls/ca.pem" "$1"
}

started=0
for _ in 1 2 3 4 5; do           # new ports if another process took ours
  read -r HTTP_PORT HTTPS_PORT ROGUE_PORT WRONG_PORT H2_PORT < <(free_ports)
  render "$MOCK_DIR/nginx.conf.in" "$TMP/nginx.conf" \
    "PREFIX=$TMP" "MOCK_DIR=$MOCK_DIR" "USER_LINE=$user_line" \
    "HTTP_PORT=$HTTP_PORT" "HTTPS_PORT=$HTTPS_PORT" "ROGUE_PORT=$ROGUE_PORT" "WRONG_PORT=$WRONG_PORT" "H2_PORT=$H2_PORT"
  : > "$TMP/error.log"
  env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_1 -u LUA_CPATH_5_1 \
    nginx -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/error.log" -g 'daemon off;' \
    </dev/null >>"$TMP/nginx.out" 2>&1 &
  nginx_pid=$!
  for _ in $(seq 100); do            # up to ~10 s
    if ! kill -0 "$nginx_pid" 2>/dev/null; then break; fi
    if answers "http://127.0.0.1:$HTTP_PORT/__health" &&
       answers "https://127.0.0.1:$HTTPS_PORT/__health"; then
      started=1
      break
    fi
    sleep 0.1
  done
  [ $started = 1 ] && break
  stop_pid "$nginx_pid"
  nginx_pid=
  # A port taken between our probe and nginx's bind: try other ports.
  if grep -q "Address already in use" "$TMP/error.log" "$TMP/nginx.out" 2>/dev/null; then
    continue
  fi
  break
done

if [ $started != 1 ]; then
  echo "with-mock.sh: the mock server did not start. nginx said:" >&2
  cat "$TMP/nginx.out" "$TMP/error.log" >&2 2>/dev/null || true
  exit 1
fi

export COZMOX_BASE_URL="http://127.0.0.1:$HTTP_PORT"
export COZMOX_TEST_HTTPS_URL="https://127.0.0.1:$HTTPS_PORT"
export COZMOX_TEST_ROGUE_URL="https://127.0.0.1:$ROGUE_PORT"
export COZMOX_TEST_WRONG_HOST_URL="https://127.0.0.1:$WRONG_PORT"
export COZMOX_TEST_H2_URL="https://127.0.0.1:$H2_PORT"

# Run CMD in the background (stdin kept) so a TERM/INT here is handled at
# once; cleanup then stops it.
set +e
"$@" <&0 &
cmd_pid=$!
wait "$cmd_pid"
status=$?
cmd_pid=
set -e
exit "$status"
