/*
 * loop_host.c -- a C program that embeds Lua the way plugin hosts do:
 * two threads, each with its own lua_State, each running loop-driven
 * requests concurrently on its own event loop.
 *
 *   loop_host LUA_PATH LUA_CPATH
 *
 * Each thread opens a state, registers host_poll(fds, timeout) -> ready
 * (poll(2) over { { fd =, events = "r"|"w"|"rw" }, ... }) and runs the
 * shared scenario (spec/hosts/scenario.lua) under the small scheduler of
 * spec/support/scheduler.lua, whose loop adapter waits through
 * host_poll.  The client code is the one every other host runs; only
 * the `loop` value differs.  Each thread prints the scenario's figures
 * (host names "thread1", "thread2"); the program exits 0 only when both
 * threads finished their scenario without a Lua error.  The mock API
 * comes from the environment (scripts/with-mock.sh).  spec/loop_host_spec.lua
 * compiles and runs it; under make sanitize with ASan and UBSan.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#ifndef LUA_OK
#define LUA_OK 0
#endif
#if !defined(LUA_VERSION_NUM) || LUA_VERSION_NUM < 502
#define lua_rawlen(L, i) lua_objlen((L), (i))
#endif

#define MAX_FDS 256

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *g_path, *g_cpath;

/* host_poll(fds, timeout) -> { [fd] = "r" | "w" | "rw" } */
static int host_poll(lua_State *L) {
    struct pollfd p[MAX_FDS];
    int n, i, rc, ms;
    double timeout;
    luaL_checktype(L, 1, LUA_TTABLE);
    timeout = luaL_checknumber(L, 2);
    n = (int)lua_rawlen(L, 1);
    luaL_argcheck(L, n <= MAX_FDS, 1, "too many descriptors");
    for (i = 0; i < n; i++) {
        const char *ev;
        lua_rawgeti(L, 1, i + 1);
        lua_getfield(L, -1, "fd");
        lua_getfield(L, -2, "events");
        p[i].fd = (int)luaL_checkinteger(L, -2);
        ev = luaL_checkstring(L, -1);
        p[i].events = (short)((strchr(ev, 'r') ? POLLIN : 0) | (strchr(ev, 'w') ? POLLOUT : 0));
        p[i].revents = 0;
        lua_pop(L, 3);
    }
    ms = timeout > 86400 ? 86400000 : (int)(timeout * 1000 + 0.999);
    rc = poll(p, (nfds_t)n, ms);
    if (rc < 0) return luaL_error(L, "poll failed");
    lua_createtable(L, 0, rc > 0 ? rc : 0);
    for (i = 0; i < n; i++) {
        short r = p[i].revents;
        if (r == 0) continue;
        lua_pushstring(L, (r & (POLLIN | POLLHUP | POLLERR)) && (r & POLLOUT) ? "rw" : (r & POLLOUT) ? "w" : "r");
        lua_rawseti(L, -2, p[i].fd);
    }
    return 1;
}

static const char *const SCRIPT =
    "local name = ...\n"
    "local scheduler = require('support.scheduler')\n"
    "local scenario = require('hosts.scenario')\n"
    "local sched = scheduler.new(host_poll)\n"
    "local figures\n"
    "scenario.run({\n"
    "  name = name, loop = sched.adapter, spawn = sched.spawn,\n"
    "  every = function(s, fn)\n"
    "    local on = true\n"
    "    sched.spawn(function()\n"
    "      while on do sched.adapter.wait({}, s); if on then fn() end end\n"
    "    end)\n"
    "    return function() on = false end\n"
    "  end,\n"
    "  done = function(f) figures = f end,\n"
    "})\n"
    "sched.run()\n"
    "return scenario.report(name, assert(figures, 'the scenario did not finish'))\n";

typedef struct job {
    char name[16];
    int ok;
} job;

static void *run_thread(void *arg) {
    job *j = (job *)arg;
    lua_State *L = luaL_newstate();
    if (L == NULL) return NULL;
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, g_path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, g_cpath);
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    lua_pushcfunction(L, host_poll);
    lua_setglobal(L, "host_poll");
    if (luaL_loadstring(L, SCRIPT) != LUA_OK) {
        fprintf(stderr, "%s: %s\n", j->name, lua_tostring(L, -1));
    } else {
        lua_pushstring(L, j->name);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
            pthread_mutex_lock(&out_lock);
            fprintf(stderr, "%s: error: %s\n", j->name, lua_tostring(L, -1));
            pthread_mutex_unlock(&out_lock);
        } else {
            pthread_mutex_lock(&out_lock);
            fputs(lua_tostring(L, -1), stdout);
            fflush(stdout);
            pthread_mutex_unlock(&out_lock);
            j->ok = 1;
        }
    }
    lua_close(L); /* every __gc: clients, drivers, transfers */
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t t[2];
    job jobs[2];
    int i, ok = 1;
    if (argc != 3) {
        fprintf(stderr, "usage: %s LUA_PATH LUA_CPATH\n", argv[0]);
        return 2;
    }
    g_path = argv[1];
    g_cpath = argv[2];
    for (i = 0; i < 2; i++) {
        snprintf(jobs[i].name, sizeof jobs[i].name, "thread%d", i + 1);
        jobs[i].ok = 0;
        if (pthread_create(&t[i], NULL, run_thread, &jobs[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    for (i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ok = ok && jobs[i].ok;
    }
    printf("loop_host: %s\n", ok ? "both threads finished" : "a thread failed");
    return ok ? 0 : 1;
}
