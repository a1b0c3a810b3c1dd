#!/usr/bin/env bash
# make bench: one command, one table (see bench/bench.lua for the method).
#
#   bash bench/run.sh                  # after `make`; works from any directory
#   BENCH_ROUNDS=3 bash bench/run.sh   # fewer rounds (default 7)
#   (the decode/encode rows run on Lua 5.4 and on LuaJIT: bench/codec.lua)
#   BENCH_N=500 bash bench/run.sh      # requests per round end to end (default 2000)
#
# Everything it makes lives in one temp dir, removed at exit: the
# generated documents (bench/gen.lua), the compiled libcurl floor
# (bench/curl_floor.c) and a private nginx (bench/nginx.conf.in) on a free
# 127.0.0.1 port, stopped by its pid.  No traffic leaves 127.0.0.1.
# Progress goes to stderr, the table to stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DEPS_EXTRA="luajit2 wrk" bash scripts/deps.sh
if [ ! -f build/lua5.4/cozmox/core.so ]; then
  make -s --no-print-directory all
fi
# The codec rows also run on LuaJIT, against its own build of the core.
make -s --no-print-directory LUA=luajit all
for tool in nginx gcc pkg-config lua5.4 luajit curl wrk; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool not found" >&2; exit 1; }
done

# Loopback only: no proxy may see (or divert) the traffic.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY='*' no_proxy='*'

export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export LUA_CPATH="$ROOT/build/lua5.4/?.so;;"
export BENCH_CPATH_LUA54="$ROOT/build/lua5.4/?.so;;" BENCH_CPATH_LUAJIT="$ROOT/build/luajit/?.so;;"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cozmox-bench.XXXXXX")
nginx_pid=
front_pid=

# shellcheck source=scripts/procs.sh
. "$ROOT/scripts/procs.sh"

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$nginx_pid" ]; then stop_pid "$nginx_pid"; fi
  if [ -n "$front_pid" ]; then stop_pid "$front_pid"; fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the libcurl floor -----------------------------------------------------
# shellcheck disable=SC2046  # pkg-config output is word-split on purpose
gcc -O2 -std=gnu99 -Wall -Wextra -o "$TMP/curl_floor" bench/curl_floor.c $(pkg-config --cflags --libs libcurl)

# --- the documents ------------------------------------------------------------
mkdir -p "$TMP/www" "$TMP/tmp"
lua5.4 bench/gen.lua spec/fixtures/session.json "$TMP/www"

# --- nginx --------------------------------------------------------------------
free_port() {
  lua5.4 -e '
    local socket = require "socket"
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, p = s:getsockname()
    s:close()
    print(p)'
}

user_line=
if [ "$(id -u)" = 0 ]; then user_line="user root;"; fi

started=0
for _ in 1 2 3 4 5; do            # another port if someone took ours
  PORT=$(free_port)
  sed -e "s|@PREFIX@|$TMP|g" -e "s|@PORT@|$PORT|g" -e "s|@USER_LINE@|$user_line|g" \
    bench/nginx.conf.in > "$TMP/nginx.conf"
  : > "$TMP/error.log"
  nginx -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/error.log" -g 'daemon off;' \
    </dev/null >>"$TMP/nginx.out" 2>&1 &
  nginx_pid=$!
  for _ in $(seq 100); do             # up to ~10 s
    kill -0 "$nginx_pid" 2>/dev/null || break
    if curl --noproxy '*' -sf -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/__health"; then
      started=1
      break
    fi
    sleep 0.1
  done
  [ $started = 1 ] && break
  stop_pid "$nginx_pid"
  nginx_pid=
  grep -q "Address already in use" "$TMP/error.log" "$TMP/nginx.out" 2>/dev/null || break
done
if [ $started != 1 ]; then
  echo "bench: nginx did not start:" >&2
  cat "$TMP/nginx.out" "$TMP/error.log" >&2 2>/dev/null || true
  exit 1
fi

# --- the nginx in front (the "inside nginx" rows) ----------------------------
started=0
for _ in 1 2 3 4 5; do
  FRONT_PORT=$(free_port)
  sed -e "s|@PREFIX@|$TMP|g" -e "s|@PORT@|$FRONT_PORT|g" -e "s|@USER_LINE@|$user_line|g" \
    -e "s|@ROOT@|$ROOT|g" -e "s|@UPSTREAM@|http://127.0.0.1:$PORT|g" -e "s|@UPORT@|$PORT|g" \
    bench/front.conf.in > "$TMP/front.conf"
  : > "$TMP/front-error.log"
  nginx -p "$TMP" -c "$TMP/front.conf" -e "$TMP/front-error.log" -g 'daemon off;' \
    </dev/null >>"$TMP/front.out" 2>&1 &
  front_pid=$!
  for _ in $(seq 100); do
    kill -0 "$front_pid" 2>/dev/null || break
    if curl --noproxy '*' -sf -o /dev/null --max-time 2 "http://127.0.0.1:$FRONT_PORT/__health"; then
      started=1
      break
    fi
    sleep 0.1
  done
  [ $started = 1 ] && break
  stop_pid "$front_pid"
  front_pid=
  grep -q "Address already in use" "$TMP/front-error.log" "$TMP/front.out" 2>/dev/null || break
done
if [ $started != 1 ]; then
  echo "bench: the front nginx did not start:" >&2
  cat "$TMP/front.out" "$TMP/front-error.log" >&2 2>/dev/null || true
  exit 1
fi

# --- the machine ----------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
[ -n "$cpu" ] || cpu=$(uname -m)
BENCH_MACHINE="$cpu, $(nproc) cores, Linux $(uname -r) $(uname -m)"
BENCH_NGINX=$(nginx -v 2>&1 | sed 's|^nginx version: nginx/||')
BENCH_LUA=$(lua5.4 -v 2>&1 | awk '{ print $1 " " $2 }')
export BENCH_MACHINE BENCH_NGINX BENCH_LUA

lua5.4 bench/bench.lua "$TMP/www" "http://127.0.0.1:$PORT" "$TMP/curl_floor" "http://127.0.0.1:$FRONT_PORT"
