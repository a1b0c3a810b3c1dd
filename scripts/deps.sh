#!/usr/bin/env bash
# Install what cozmox-lua needs to build and test, on Debian 12 (bookworm).
#
# Fast path: when every package is installed and the de_DE.UTF-8 locale
# exists, print nothing and exit 0 (this runs before every `make test`).
# As root with apt-get, install what is missing; otherwise print the
# command to run and exit 1.
#
#   DEPS_EXTRA="clang valgrind" bash scripts/deps.sh   # add more packages
#
# git: luarocks pack fetches a git+ source (spec/install_spec.lua makes a release).
# Never add the package `luajit`: it conflicts with nginx's libluajit2
# (the LuaJIT interpreter package compatible with it is `luajit2`).
set -euo pipefail

packages=(
  gcc make pkg-config
  lua5.4 liblua5.4-dev libcurl4-openssl-dev zlib1g-dev
  lua-busted lua-cjson lua-dkjson lua-socket luarocks
  nginx libnginx-mod-http-lua libluajit2-5.1-dev
  openssl locales curl ca-certificates git valgrind
)
# shellcheck disable=SC2206  # word splitting of DEPS_EXTRA is intended
packages+=(${DEPS_EXTRA:-})

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  # One dpkg-query call for all packages; unknown packages print nothing
  # on stdout, so compare against the list of installed names.
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
  for p in "${packages[@]}"; do
    if ! grep -qx "${p%%:*} installed" <<<"$installed"; then
      missing+=("$p")
    fi
  done
else
  echo "deps.sh: dpkg-query not found; this script supports Debian/Ubuntu only" >&2
  exit 1
fi

am_root=0
[ "$(id -u)" = 0 ] && am_root=1

if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  if [ $am_root = 1 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps.sh: installing: ${missing[*]}" >&2
    # Keep package scripts from starting services (the system nginx would
    # take port 80): a temporary policy-rc.d, unless one already exists.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 0755 "$policy"
      trap 'rm -f "$policy"' EXIT
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  else
    echo "deps.sh: missing packages: ${missing[*]}" >&2
    echo "deps.sh: run as root:" >&2
    echo "  $cmd" >&2
    exit 1
  fi
fi

# Specs switch LC_NUMERIC to de_DE.UTF-8 to prove number handling ignores
# the locale, so that locale must exist.
if ! locale -a 2>/dev/null | grep -qix 'de_DE\.utf-\{0,1\}8'; then
  if [ $am_root = 1 ]; then
    echo "deps.sh: generating locale de_DE.UTF-8" >&2
    localedef -i de_DE -f UTF-8 de_DE.UTF-8
  else
    echo "deps.sh: locale de_DE.UTF-8 is missing; run as root:" >&2
    echo "  localedef -i de_DE -f UTF-8 de_DE.UTF-8" >&2
    exit 1
  fi
fi
