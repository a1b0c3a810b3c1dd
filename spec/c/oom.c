/*
 * oom.c -- out-of-memory sweep: no Lua error may longjmp through libcurl,
 * and running out of memory anywhere must end in a clean Lua error.
 *
 *   oom CORE_SO [REQUEST_STRIDE]
 *
 * CORE_SO is the path of a built cozmox/core.so; the mock API comes from
 * COZMOX_BASE_URL / COZMOX_TOKEN and the fixture from COZMOX_TEST_FIXTURES
 * (scripts/with-mock.sh sets all three).  spec/oom_spec.lua compiles and
 * runs this program; make sanitize has it built with ASan and UBSan.
 *
 * Each run is a fresh lua_State whose lua_Alloc refuses every allocation
 * (every call that grows a block) after the first N made inside the
 * snippet under test; nothing is counted or refused while the state is
 * set up (standard libraries, globals, the compiled snippet).  The
 * snippet runs under lua_pcall: it requires cozmox.core (so registration
 * is swept too) and then
 *
 *   decode:  decodes spec/fixtures/session.json with core.decode, again
 *            with core.decoder() fed in 4 KB chunks, encodes the result
 *            and decodes that, then pours it through a response sink
 *            (core.sink) as the cosocket transport does;
 *   request: require("cozmox.curl").handle{ auth = ... }:perform{ GET
 *            base_url .. "/session/demo" } -- a real transfer whose body
 *            the sink and decoder build inside curl's write callback --
 *            and checks for a 200 with the session table.
 *
 * N goes 0, 1, 2, ... (for the request phase 0, S, 2S, ... with S =
 * REQUEST_STRIDE, default 1) until a run completes without a refusal.
 * Each snippet is swept twice: with every allocation from the Nth on
 * refused (the state is out of memory for good), and with only the Nth
 * refused (a transient failure: the code after it, error paths included,
 * then runs with memory, so the transport's "nil, kind, message" returns
 * are reached, not only raised memory errors).
 *
 * Every run must end with lua_pcall returning LUA_OK, LUA_ERRMEM, or
 * LUA_ERRRUN with a string message; then the limit is lifted, a full GC
 * runs and the state is closed (every __gc: decoder, buffers, curl
 * handles).  Runs happen in a child process, so a crash (signal, abort,
 * sanitizer report, hang past 60 s) is counted and the sweep goes on
 * after the limit that crashed.  At its exit the child has closed every
 * state, so under ASan its leak check sees anything our code lost on an
 * error path; a non-zero exit there is a failure too.
 *
 * After each request run, whatever its outcome, the limit is lifted and
 * the same handle must perform the request again and close: a Lua error
 * thrown through libcurl's frames would have left it marked busy (and
 * libcurl mid-transfer), which this catches as a "broken handle" -- and
 * under ASan the leak check too, as __gc then cannot release it.
 *
 * Output: one line per phase, the distinct error messages seen, then
 *   oom: N allocation limits tried, C crashes, B broken handles
 * Exit status 0 only when C and B are 0 and every child exited cleanly.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>
#ifndef LUA_OK
#define LUA_OK 0 /* Lua 5.1 */
#endif
#include <lualib.h>

#define RUN_TIMEOUT_S 60

/* ------------------------------------------------------------ allocator */

typedef struct limiter {
    int armed;
    int transient; /* refuse only calls limit and limit + 1 */
    long calls;    /* allocation calls while armed, refused ones included */
    long limit;
    long refused;
} limiter;

/* Frees and shrinks always succeed (Lua relies on that); a call for a new
 * block or a bigger one counts.  Permanent mode refuses every call from
 * number `limit` on.  Transient mode refuses just two in a row: the call
 * and Lua's retry after its emergency collection, so the allocation
 * really fails, and the code after it then finds memory again. */
static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    limiter *lim = (limiter *)ud;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (lim->armed && (ptr == NULL || nsize > osize)) {
        long k = lim->calls++;
        if (k >= lim->limit && (!lim->transient || k < lim->limit + 2)) {
            lim->refused++;
            return NULL;
        }
    }
    return realloc(ptr, nsize);
}

/* -------------------------------------------------------------- snippets */

static const char *const DECODE_SNIPPET =
    "local core = require 'cozmox.core'\n"
    "local v = core.decode(FIXTURE)\n"
    "if type(v) ~= 'table' or v.status ~= 'active' then error('decode: wrong value', 0) end\n"
    "local d = core.decoder()\n"
    "for i = 1, #FIXTURE, 4096 do\n"
    "  local ok, err = d:feed(FIXTURE:sub(i, i + 4095))\n"
    "  if not ok then error(err, 0) end\n"
    "end\n"
    "local w, err = d:finish()\n"
    "if w == nil then error(err, 0) end\n"
    "local x = core.decode(core.encode(w))\n"
    "if x.status ~= 'active' then error('round trip: wrong value', 0) end\n"
    "local sink = core.sink(67108864, 1000)\n"
    "sink:begin(200)\n"
    "for i = 1, #FIXTURE, 4096 do\n"
    "  if not sink:feed(FIXTURE:sub(i, i + 4095)) then break end\n"
    "end\n"
    "local r = sink:finish({})\n"
    "if type(r.value) ~= 'table' or r.value.status ~= 'active' then\n"
    "  error('sink: ' .. tostring(r.kind) .. ': ' .. tostring(r.message), 0)\n"
    "end\n";

static const char *const REQUEST_SNIPPET =
    "local curl = require 'cozmox.curl'\n"
    "H = curl.handle{ auth = 'Authorization: Bearer ' .. TOKEN, connect_timeout = 10,\n"
    "                 max_response_bytes = 67108864, max_depth = 1000 }\n"
    "REQ = { method = 'GET', url = BASE_URL .. '/session/demo', timeout = 30, connect_timeout = 10 }\n"
    "local r = H:perform(REQ)\n"
    "if r.kind == 'decode' then\n"
    "  MISREPORTED = 'running out of memory was reported as a decode error: ' .. tostring(r.message)\n"
    "end\n"
    "if r.status ~= 200 or type(r.value) ~= 'table' or r.value.status ~= 'active' then\n"
    "  error('request: ' .. tostring(r.status) .. ' ' .. tostring(r.kind) .. ': ' .. tostring(r.message), 0)\n"
    "end\n";

/* Run with memory again after every request run, whatever its outcome:
 * the handle must still work.  A Lua error that unwound through
 * curl_easy_perform would have left it marked busy ("already performing
 * a request") and libcurl in the middle of a transfer. */
static const char *const VERIFY_SNIPPET =
    "if H == nil then return end\n"
    "local r = H:perform({ method = 'GET', url = BASE_URL .. '/session/demo', timeout = 30, connect_timeout = 10 })\n"
    "if r.status ~= 200 or type(r.value) ~= 'table' then\n"
    "  error('handle unusable after the run: ' .. tostring(r.status) .. ' ' .. tostring(r.kind) .. ': ' .. tostring(r.message), 0)\n"
    "end\n"
    "H:close()\n";

/* ------------------------------------------------------------ one run */

static const char *g_cpath;   /* package.cpath for the snippets */
static char *g_fixture;       /* session.json */
static size_t g_fixture_len;
static const char *g_base_url, *g_token;

enum outcome { O_OK, O_ERRMEM, O_ERRRUN };

typedef struct result {
    enum outcome outcome;
    int broken;        /* VERIFY_SNIPPET failed; msg says why */
    long used;
    long refused;
    char msg[160];
} result;

__attribute__((noreturn)) static void fatal(const char *what, const char *detail) {
    fprintf(stderr, "oom: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(2);
}

/* Run snippet in a fresh state with at most `limit` allocations.  Anything
 * other than a clean outcome aborts (the parent counts it as a crash). */
static void run_one(const char *snippet, int transient, long limit, result *r) {
    limiter lim = {0, 0, 0, 0, 0};
    lua_State *L = lua_newstate(limited_alloc, &lim);
    int status;
    if (L == NULL) fatal("lua_newstate failed", NULL);
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, g_cpath);
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    lua_pushlstring(L, g_fixture, g_fixture_len);
    lua_setglobal(L, "FIXTURE");
    lua_pushstring(L, g_base_url);
    lua_setglobal(L, "BASE_URL");
    lua_pushstring(L, g_token);
    lua_setglobal(L, "TOKEN");
    if (luaL_loadstring(L, snippet) != LUA_OK) fatal("snippet does not compile", lua_tostring(L, -1));

    lim.limit = limit;
    lim.transient = transient;
    lim.armed = 1;
    status = lua_pcall(L, 0, 0, 0);
    lim.armed = 0;

    memset(r, 0, sizeof *r);
    r->used = lim.calls;
    r->refused = lim.refused;
    switch (status) {
    case LUA_OK:
        r->outcome = O_OK;
        break;
    case LUA_ERRMEM:
        r->outcome = O_ERRMEM;
        snprintf(r->msg, sizeof r->msg, "%s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
        break;
    case LUA_ERRRUN:
        if (lua_type(L, -1) != LUA_TSTRING) {
            fprintf(stderr, "oom: limit %ld: error object of type %s\n", limit, luaL_typename(L, -1));
            abort();
        }
        r->outcome = O_ERRRUN;
        snprintf(r->msg, sizeof r->msg, "%s", lua_tostring(L, -1));
        r->msg[strcspn(r->msg, "\n")] = '\0';
        break;
    default:
        fprintf(stderr, "oom: limit %ld: lua_pcall returned %d: %s\n", limit, status,
                lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
        abort();
    }
    lua_settop(L, 0);
    /* A failure reported as something it is not counts as broken too. */
    lua_getglobal(L, "MISREPORTED");
    if (lua_type(L, -1) == LUA_TSTRING) {
        r->broken = 1;
        snprintf(r->msg, sizeof r->msg, "%s", lua_tostring(L, -1));
    }
    lua_settop(L, 0);
    if (luaL_loadstring(L, VERIFY_SNIPPET) != LUA_OK) fatal("VERIFY_SNIPPET does not compile", lua_tostring(L, -1));
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        r->broken = 1;
        snprintf(r->msg, sizeof r->msg, "%s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
        r->msg[strcspn(r->msg, "\n")] = '\0';
    }
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    lua_close(L);
}

/* ------------------------------------------------------------ the sweep */

/* Child: run limits from, from + stride, ... until a run completes with
 * nothing refused; one line per run on fd:
 * "limit outcome used refused broken message". */
static void child_sweep(int fd, const char *snippet, int transient, long from, long stride) {
    FILE *out = fdopen(fd, "w");
    long limit;
    if (out == NULL) fatal("fdopen", strerror(errno));
    for (limit = from;; limit += stride) {
        result r;
        alarm(RUN_TIMEOUT_S);
        run_one(snippet, transient, limit, &r);
        alarm(0);
        fprintf(out, "%ld %d %ld %ld %d %s\n", limit, (int)r.outcome, r.used, r.refused, r.broken, r.msg);
        fflush(out);
        if (r.refused == 0) break;
    }
    fclose(out);
    exit(0); /* under ASan the leak check runs now */
}

#define MAX_MSGS 64

typedef struct tally {
    long tried, ok, errmem, errrun, crashes, broken, bad_exits, last_limit, full_run;
    int nmsgs;
    char msgs[MAX_MSGS][160];
    long msg_count[MAX_MSGS];
} tally;

static void count_msg(tally *t, const char *m) {
    int i;
    for (i = 0; i < t->nmsgs; i++)
        if (strcmp(t->msgs[i], m) == 0) {
            t->msg_count[i]++;
            return;
        }
    if (t->nmsgs < MAX_MSGS) {
        snprintf(t->msgs[t->nmsgs], sizeof t->msgs[0], "%s", m);
        t->msg_count[t->nmsgs++] = 1;
    }
}

static void describe_status(int st, char *buf, size_t n) {
    if (WIFSIGNALED(st)) snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else snprintf(buf, n, "exit status %d", WEXITSTATUS(st));
}

/* Sweep one snippet in child processes; after a crash, a new child goes
 * on from the next limit. */
static void sweep(const char *name, const char *snippet, int transient, long stride, tally *t) {
    long from = 0;
    int done = 0, i;
    memset(t, 0, sizeof *t);
    t->last_limit = -1;
    while (!done) {
        int fds[2], st, final = 0;
        long last = -1;
        pid_t pid;
        FILE *in;
        char line[512], why[96];
        if (pipe(fds) != 0) fatal("pipe", strerror(errno));
        fflush(NULL);
        pid = fork();
        if (pid < 0) fatal("fork", strerror(errno));
        if (pid == 0) {
            close(fds[0]);
            child_sweep(fds[1], snippet, transient, from, stride);
        }
        close(fds[1]);
        in = fdopen(fds[0], "r");
        if (in == NULL) fatal("fdopen", strerror(errno));
        while (fgets(line, sizeof line, in)) {
            long limit, used, refused;
            int outcome, broken, pos = 0;
            if (sscanf(line, "%ld %d %ld %ld %d %n", &limit, &outcome, &used, &refused, &broken, &pos) < 5) continue;
            line[strcspn(line, "\n")] = '\0';
            t->tried++;
            last = t->last_limit = limit;
            if (broken) {
                if (t->broken++ < 10) fprintf(stderr, "oom: %s: BROKEN at allocation limit %ld: %s\n", name, limit, line + pos);
            } else if (outcome == O_OK) t->ok++;
            else {
                if (outcome == O_ERRMEM) t->errmem++;
                else t->errrun++;
                count_msg(t, line + pos);
            }
            if (refused == 0) {
                final = 1;
                t->full_run = used;
                if (outcome != O_OK) {
                    fprintf(stderr, "oom: %s: the snippet fails with no allocation refused: %s\n", name, line + pos);
                    exit(2);
                }
            }
        }
        fclose(in);
        if (waitpid(pid, &st, 0) < 0) fatal("waitpid", strerror(errno));
        if (final) {
            done = 1;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                describe_status(st, why, sizeof why);
                fprintf(stderr, "oom: %s: the sweep child %s at exit, after its last run "
                        "(a sanitizer report: leaks?)\n", name, why);
                t->bad_exits++;
            }
        } else {
            long crashed = last < 0 ? from : last + stride;
            describe_status(st, why, sizeof why);
            fprintf(stderr, "oom: %s: CRASH at allocation limit %ld: %s\n", name, crashed, why);
            t->tried++;
            t->crashes++;
            t->last_limit = crashed;
            from = crashed + stride;
            if (t->crashes >= 20) {
                fprintf(stderr, "oom: %s: 20 crashes, giving up\n", name);
                done = 1;
            }
        }
    }
    printf("oom: %s: limits 0..%ld every %ld: %ld tried, %ld completed, %ld memory errors, %ld other errors, "
           "%ld crashes, %ld broken handles; an unlimited run makes %ld allocations\n",
           name, t->last_limit, stride, t->tried, t->ok, t->errmem, t->errrun, t->crashes, t->broken, t->full_run);
    for (i = 0; i < t->nmsgs; i++) printf("oom:   %6ld x %s\n", t->msg_count[i], t->msgs[i]);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n = 0;
    if (f == NULL) fatal("cannot open", path);
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) fatal("cannot size", path);
    buf = (char *)malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) fatal("cannot read", path);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv) {
    const char *core = argc > 1 ? argv[1] : NULL;
    const char *fixtures = getenv("COZMOX_TEST_FIXTURES");
    long stride = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
    char *dir, *slash, path[4096];
    tally t[4];
    long tried = 0, crashes = 0, broken = 0, bad = 0;
    int i;
    void *pin, *pin_curl;

    if (core == NULL || stride < 1) {
        fprintf(stderr, "usage: %s path/to/cozmox/core.so [REQUEST_STRIDE]\n", argv[0]);
        return 2;
    }
    g_base_url = getenv("COZMOX_BASE_URL");
    g_token = getenv("COZMOX_TOKEN");
    if (g_base_url == NULL || g_token == NULL || fixtures == NULL)
        fatal("COZMOX_BASE_URL, COZMOX_TOKEN and COZMOX_TEST_FIXTURES must be set (scripts/with-mock.sh)", NULL);
    snprintf(path, sizeof path, "%s/session.json", fixtures);
    g_fixture = read_file(path, &g_fixture_len);

    /* package.cpath: core is DIR/cozmox/core.so, so DIR/?.so. */
    dir = strdup(core);
    if (dir == NULL) fatal("out of memory", NULL);
    slash = strrchr(dir, '/');
    if (slash == NULL) fatal("CORE_SO must be a path ending in cozmox/core.so", core);
    *slash = '\0';
    slash = strrchr(dir, '/');
    if (slash == NULL || strcmp(slash, "/cozmox") != 0) fatal("CORE_SO must be a path ending in cozmox/core.so", core);
    *slash = '\0';
    snprintf(path, sizeof path, "%s/?.so", dir);
    g_cpath = strdup(path);
    /* Keep the module mapped for the whole sweep: each lua_close would
     * otherwise unload it (and libcurl with it), and the next state would
     * load it again. */
    pin = dlopen(core, RTLD_NOW | RTLD_GLOBAL);
    if (pin == NULL) fatal("dlopen", dlerror());
    snprintf(path, sizeof path, "%s/cozmox/curl.so", dir);
    pin_curl = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (pin_curl == NULL) fatal("dlopen", dlerror());

    for (i = 0; i < 4; i++) {
        int transient = i % 2, request = i >= 2;
        sweep(request ? transient ? "request, transient" : "request" : transient ? "decode, transient" : "decode",
              request ? REQUEST_SNIPPET : DECODE_SNIPPET, transient, request ? stride : 1, &t[i]);
        tried += t[i].tried;
        crashes += t[i].crashes;
        broken += t[i].broken;
        bad += t[i].bad_exits;
    }
    printf("oom: %ld allocation limits tried, %ld crashes, %ld broken handles\n", tried, crashes, broken);
    free(dir);
    free((void *)g_cpath);
    free(g_fixture);
    return crashes + broken + bad == 0 ? 0 : 1;
}
