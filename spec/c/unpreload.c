/*
 * unpreload.c -- preloaded by `make sanitize` right after the ASan runtime
 * into each lua5.4 it runs (build/sanitize/bin/lua5.4), this drops
 * LD_PRELOAD from that process's environment before main() runs.
 *
 * The runtime is already mapped by then, so lua5.4 keeps ASan; but the
 * programs the specs start (sh, curl, make, gcc, luarocks) inherit a clean
 * environment and run without it: their own leaks are not ours, and curl
 * was seen to deadlock in setlocale() with the ASan runtime preloaded.
 * A lua5.4 started by a spec goes through the wrapper again (LUA_BIN and
 * PATH point at it), so every process that loads core.so is instrumented.
 *
 * Built without sanitizers: cc -shared -fPIC -o unpreload.so unpreload.c
 */
#include <stdlib.h>

__attribute__((constructor)) static void cz_unpreload(void) {
    unsetenv("LD_PRELOAD");
}
