/*
 * multi.c -- many GET requests at once over curl's multi interface.
 *
 *   outcomes = handle:perform_many(urls, concurrency, want_meta)
 *
 * Runs GET on every URL with at most `concurrency` transfers in flight,
 * each on its own duplicate of the handle's easy handle (same options,
 * same share handle, so connections are reused and HTTP/2 multiplexed
 * where the server speaks it) and its own push decoder, which decodes the
 * body as it arrives exactly as for perform.  Returns an array indexed
 * like urls of tables { status =, value =, kind =, message =, curl_code =,
 * started =, snippet =, retry_after =, ratelimit_reset =, meta = }
 * carrying perform's outcome values by name.
 *
 * The easy handles, the multi handle and the slot array belong to a
 * userdata with __gc, so a Lua error between transfers leaks nothing;
 * inside transfers only the protected decoder runs Lua.
 */
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "compat.h"
#include "json.h"
#include "transport.h"

#define MULTI_MT "cozmox.multi"
#define MAX_CONCURRENCY 256

typedef struct slot {
    CURL *easy;
    int index;      /* 1-based position in urls; 0 when idle */
    cz_buf hdrs;
    cz_transfer t;
    char errbuf[CURL_ERROR_SIZE];
} slot;

typedef struct cz_multi {
    CURLM *m;
    slot *slots;
    int nslots;
    int *busy;      /* the parent handle's busy flag, cleared by __gc too */
} cz_multi;

static void multi_release(cz_multi *mu) {
    int i;
    if (mu->slots != NULL) {
        for (i = 0; i < mu->nslots; i++) {
            slot *s = &mu->slots[i];
            if (s->easy != NULL) {
                if (mu->m != NULL && s->index != 0) curl_multi_remove_handle(mu->m, s->easy);
                curl_easy_cleanup(s->easy);
            }
            cz_buf_free(&s->hdrs);
        }
        free(mu->slots);
        mu->slots = NULL;
    }
    if (mu->m != NULL) curl_multi_cleanup(mu->m);
    mu->m = NULL;
    if (mu->busy != NULL) *mu->busy = 0;
    mu->busy = NULL;
}

static int multi_gc(lua_State *L) {
    multi_release((cz_multi *)luaL_checkudata(L, 1, MULTI_MT));
    return 0;
}

/* Store the finished transfer of s as outcomes[s->index].  Stack: out_idx
 * holds the outcomes table. */
static void collect(lua_State *L, slot *s, CURLcode rc, int out_idx, int want_meta) {
    static const char *const names[] = {"status", "value", "kind", "message", "curl_code", "extra"};
    int n, i, base = lua_gettop(L);
    luaL_checkstack(L, 12, "cozmox: Lua stack exhausted");
    lua_createtable(L, 0, 8);
    n = cz_transfer_outcome(L, &s->t, rc, s->errbuf);
    for (i = n; i >= 1; i--) {
        const char *name = names[i - 1];
        if (i == 6) name = lua_type(L, -1) == LUA_TBOOLEAN ? "started" : "snippet";
        lua_setfield(L, base + 1, name);
    }
    cz_push_header(L, &s->hdrs, "retry-after");
    lua_setfield(L, base + 1, "retry_after");
    cz_push_header(L, &s->hdrs, "x-ratelimit-reset");
    lua_setfield(L, base + 1, "ratelimit_reset");
    if (want_meta && s->t.started) {
        cz_push_meta(L, s->easy, &s->hdrs);
        lua_setfield(L, base + 1, "meta");
    }
    lua_rawseti(L, out_idx, s->index);
    lua_settop(L, base);
}

/* Start urls[index] on idle slot s. */
static int start(lua_State *L, cz_multi *mu, slot *s, int urls_idx, int index, curl_off_t max_bytes) {
    const char *url;
    lua_rawgeti(L, urls_idx, index);
    url = lua_tostring(L, -1);
    lua_pop(L, 1); /* the string stays referenced by urls */
    if (url == NULL) return luaL_error(L, "bad argument #1 to 'perform_many' (urls[%d] is not a string)", index);
    cz_transfer_init(&s->t, L, s->easy, &s->hdrs, max_bytes, s->t.dec_idx);
    s->errbuf[0] = '\0';
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    if (curl_multi_add_handle(mu->m, s->easy) != CURLM_OK)
        return luaL_error(L, "cozmox: curl_multi_add_handle failed");
    s->index = index;
    return 0;
}

/* handle:perform_many(urls, concurrency, want_meta).  Stack: [1] handle,
 * [2] urls, [3] concurrency, [4] want_meta. */
int cz_perform_many(lua_State *L) {
    cz_handle *h = cz_check_handle(L, 1);
    int n, conc, want_meta, i, next = 1, active = 0, out_idx, mu_idx;
    curl_off_t max_bytes = cz_handle_max_bytes(h);
    int *busy = cz_handle_busy(h);
    cz_multi *mu;

    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int)lua_rawlen(L, 2);
    conc = (int)luaL_optinteger(L, 3, 8);
    luaL_argcheck(L, conc >= 1 && conc <= MAX_CONCURRENCY, 3, "concurrency out of range");
    want_meta = lua_toboolean(L, 4);
    if (*busy) return luaL_error(L, "cozmox: handle is already performing a request");
    lua_settop(L, 4);
    if (conc > n) conc = n > 0 ? n : 1;

    lua_createtable(L, n, 0);
    out_idx = lua_gettop(L);
    mu = (cz_multi *)cz_newuserdata(L, sizeof *mu);
    memset(mu, 0, sizeof *mu);
    cz_setmetatable(L, MULTI_MT);
    mu_idx = lua_gettop(L);
    (void)mu_idx;
    mu->m = curl_multi_init();
    mu->slots = (slot *)calloc((size_t)conc, sizeof(slot));
    if (mu->m == NULL || mu->slots == NULL) return luaL_error(L, "cozmox: out of memory");
    mu->nslots = conc;
#ifdef CURLPIPE_MULTIPLEX
    curl_multi_setopt(mu->m, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
#endif
    /* Decoders, plus room the curl callbacks use without growing it. */
    luaL_checkstack(L, conc + 24, "cozmox: too many concurrent requests for the Lua stack");
    for (i = 0; i < conc; i++) {
        slot *s = &mu->slots[i];
        s->easy = curl_easy_duphandle(cz_handle_easy(h));
        if (s->easy == NULL) return luaL_error(L, "cozmox: curl_easy_duphandle failed");
        curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf);
        curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, &s->t);
        curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, &s->t);
        curl_easy_setopt(s->easy, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(s->easy, CURLOPT_CUSTOMREQUEST, (char *)NULL);
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, cz_handle_headers(h));
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (char *)s);
        cz_decoder_push(L, CZ_DEFAULT_MAX_DEPTH);
        s->t.dec_idx = lua_gettop(L);
    }
    /* Each slot decodes with the parent handle's decoder settings. */
    cz_getuservalue(L, 1);
    for (i = 0; i < conc; i++)
        cz_decoder_copy_settings((cz_decoder *)lua_touserdata(L, mu->slots[i].t.dec_idx),
                                 (cz_decoder *)lua_touserdata(L, -1));
    lua_pop(L, 1);

    *busy = 1;
    mu->busy = busy;
    for (;;) {
        int running = 0, queued;
        CURLMsg *msg;
        for (i = 0; i < conc && next <= n; i++) {
            if (mu->slots[i].index == 0) {
                start(L, mu, &mu->slots[i], 2, next++, max_bytes);
                active++;
            }
        }
        if (active == 0) break;
        if (curl_multi_perform(mu->m, &running) != CURLM_OK) break;
        while ((msg = curl_multi_info_read(mu->m, &queued)) != NULL) {
            slot *s = NULL;
            CURLcode rc;
            if (msg->msg != CURLMSG_DONE) continue;
            rc = msg->data.result;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            curl_multi_remove_handle(mu->m, s->easy);
            collect(L, s, rc, out_idx, want_meta);
            s->index = 0;
            active--;
        }
        if (active > 0 && running > 0) curl_multi_poll(mu->m, NULL, 0, 1000, NULL);
    }
    multi_release(mu);
    lua_settop(L, out_idx);
    return 1;
}

void cz_multi_register(lua_State *L) {
    if (luaL_newmetatable(L, MULTI_MT)) {
        lua_pushcfunction(L, multi_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}
