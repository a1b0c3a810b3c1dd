/*
 * multi.c -- many GET requests at once over curl's multi interface.
 *
 *   records = handle:perform_many(reqs, concurrency, want_meta)
 *
 * reqs is an array of request tables (method "GET", url, timeout,
 * connect_timeout; see easy.c).  At most `concurrency` transfers run at
 * once, each on its own duplicate of the handle's easy handle (same
 * options, same share handle, so connections are reused, and HTTP/2
 * connections multiplexed: CURLOPT_PIPEWAIT) with its own response sink.
 * Returns an array of result records (transfer.h) indexed like reqs.
 *
 * The easy handles, the multi handle and the slot array belong to a
 * userdata with __gc, which also holds the parent handle (its uservalue)
 * and clears the parent's busy flag; every request is checked before the
 * parent is marked busy, and every error after that releases the multi
 * first, so the parent is never left busy.  Inside transfers only the
 * protected decoder runs Lua.
 */
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "compat.h"
#include "json.h"
#include "transfer.h"
#include "easy.h"

#define MULTI_MT "cozmox.curl.multi"
#define MAX_CONCURRENCY 256

typedef struct slot {
    CURL *easy;
    int index;      /* 1-based position in reqs; 0 when idle */
    int sink_idx;   /* stack index of its sink; its decoder is just above */
    cz_buf hdrs;
    cz_transfer t;
} slot;

typedef struct cz_multi {
    CURLM *m;
    slot *slots;
    int nslots;
    int *busy;      /* the parent handle's busy flag */
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

/* req i of the array at reqs_idx: its URL and time limits.  Raises
 * (before anything is busy) for a malformed one. */
static const char *check_req(lua_State *L, int reqs_idx, int i, lua_Number *timeout, lua_Number *connect) {
    const char *url, *method;
    lua_rawgeti(L, reqs_idx, i);
    if (!lua_istable(L, -1)) luaL_error(L, "bad argument #1 to 'perform_many' (reqs[%d] is not a table)", i);
    lua_getfield(L, -1, "method");
    lua_getfield(L, -2, "url");
    lua_getfield(L, -3, "timeout");
    lua_getfield(L, -4, "connect_timeout");
    method = lua_tostring(L, -4);
    url = lua_tostring(L, -3);
    *timeout = lua_tonumber(L, -2);
    *connect = lua_tonumber(L, -1);
    if (method == NULL || strcmp(method, "GET") != 0)
        luaL_error(L, "bad argument #1 to 'perform_many' (reqs[%d].method must be \"GET\")", i);
    if (url == NULL || strlen(url) != lua_rawlen(L, -3))
        luaL_error(L, "bad argument #1 to 'perform_many' (reqs[%d].url must be a string without NUL)", i);
    if (!(*timeout > 0) || !(*connect > 0))
        luaL_error(L, "bad argument #1 to 'perform_many' (reqs[%d] needs timeout and connect_timeout)", i);
    lua_pop(L, 5); /* the url stays referenced by reqs */
    return url;
}

static long to_ms(lua_Number seconds) {
    long ms = (long)(seconds * 1000 + 0.5);
    return ms < 1 ? 1 : ms;
}

/* Start reqs[index] on idle slot s; a CURLcode/CURLMcode failure is
 * returned as nonzero. */
static int start(lua_State *L, cz_multi *mu, slot *s, int reqs_idx, int index) {
    lua_Number timeout, connect;
    const char *url = check_req(L, reqs_idx, index, &timeout, &connect); /* checked before: no raise */
    cz_transfer_reset(&s->t, L, &s->hdrs, cz_sink_check(L, s->sink_idx), s->sink_idx + 1);
    /* Over TLS (where HTTP/2 may be offered) a new transfer waits for a
     * connection that can multiplex it rather than opening one more; over
     * plain HTTP/1.1 waiting would only serialize connection setup. */
    if (cz_set_pipewait(s->easy, url) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, to_ms(timeout)) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, to_ms(connect < timeout ? connect : timeout)) != CURLE_OK)
        return 1;
    if (curl_multi_add_handle(mu->m, s->easy) != CURLM_OK) return 1;
    s->index = index;
    return 0;
}

/* A slot's easy handle: the parent's options, GET, this slot's callbacks. */
static CURLcode slot_setup(slot *s, cz_handle *h) {
    CURLcode rc;
    s->easy = curl_easy_duphandle(cz_handle_easy(h));
    if (s->easy == NULL) return CURLE_OUT_OF_MEMORY;
    if ((rc = cz_transfer_bind(&s->t, s->easy)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(s->easy, CURLOPT_HTTPGET, 1L)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(s->easy, CURLOPT_CUSTOMREQUEST, (char *)NULL)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, cz_handle_headers(h))) != CURLE_OK) return rc;
    return curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (char *)s);
}

static int fail(lua_State *L, cz_multi *mu, const char *what) {
    multi_release(mu);
    return luaL_error(L, "cozmox: %s", what);
}

/* handle:perform_many(reqs, concurrency, want_meta).  Stack: [1] handle,
 * [2] reqs, [3] concurrency, [4] want_meta. */
int cz_perform_many(lua_State *L) {
    cz_handle *h = cz_check_handle(L, 1);
    int n, conc, want_meta, i, next = 1, active = 0, out_idx, fn_idx, model;
    int *busy = cz_handle_busy(h);
    cz_multi *mu;
    lua_Number t, c;

    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int)lua_rawlen(L, 2);
    conc = (int)luaL_optinteger(L, 3, 8);
    luaL_argcheck(L, conc >= 1 && conc <= MAX_CONCURRENCY, 3, "concurrency out of range");
    want_meta = lua_toboolean(L, 4);
    if (*busy) return luaL_error(L, "cozmox: handle is already performing a request");
    lua_settop(L, 4);
    for (i = 1; i <= n; i++) (void)check_req(L, 2, i, &t, &c);
    if (conc > n) conc = n > 0 ? n : 1;

    lua_createtable(L, n, 0);
    out_idx = lua_gettop(L);
    cz_transfer_push_recorder(L);
    fn_idx = lua_gettop(L);
    mu = (cz_multi *)cz_newuserdata(L, sizeof *mu);
    memset(mu, 0, sizeof *mu);
    cz_setmetatable(L, MULTI_MT);
    lua_pushvalue(L, 1);
    cz_setuservalue(L, -2); /* the parent outlives the multi's __gc */
    mu->m = curl_multi_init();
    mu->slots = (slot *)calloc((size_t)conc, sizeof(slot));
    if (mu->m == NULL || mu->slots == NULL) return fail(L, mu, "out of memory");
    mu->nslots = conc;
#ifdef CURLPIPE_MULTIPLEX
    if (curl_multi_setopt(mu->m, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX) != CURLM_OK)
        return fail(L, mu, "cannot enable HTTP/2 multiplexing");
#endif
    /* A sink (+ its decoder) per slot, plus room the callbacks and the
     * records use without growing the stack. */
    luaL_checkstack(L, 2 * conc + 32, "cozmox: too many concurrent requests for the Lua stack");
    cz_getuservalue(L, 1); /* the parent's sink: the model of the slots' */
    model = lua_gettop(L);
    for (i = 0; i < conc; i++) {
        slot *s = &mu->slots[i];
        if (slot_setup(s, h) != CURLE_OK) return fail(L, mu, "cannot set up a transfer");
        cz_sink_push_copy(L, model);
        s->sink_idx = lua_gettop(L);
        cz_sink_push_decoder(L, s->sink_idx);
    }

    *busy = 1;
    mu->busy = busy;
    for (;;) {
        int running = 0, queued;
        CURLMsg *msg;
        for (i = 0; i < conc && next <= n; i++) {
            if (mu->slots[i].index == 0) {
                if (start(L, mu, &mu->slots[i], 2, next++) != 0) return fail(L, mu, "cannot start a transfer");
                active++;
            }
        }
        if (active == 0) break;
        if (curl_multi_perform(mu->m, &running) != CURLM_OK) return fail(L, mu, "curl_multi_perform failed");
        while ((msg = curl_multi_info_read(mu->m, &queued)) != NULL) {
            slot *s = NULL;
            if (msg->msg != CURLMSG_DONE) continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            curl_multi_remove_handle(mu->m, s->easy);
            if (cz_transfer_record_pcall(L, fn_idx, &s->t, msg->data.result, want_meta) != 0) {
                multi_release(mu);
                return lua_error(L);
            }
            lua_rawseti(L, out_idx, s->index);
            s->index = 0;
            active--;
        }
        if (active > 0 && running > 0 && curl_multi_poll(mu->m, NULL, 0, 1000, NULL) != CURLM_OK)
            return fail(L, mu, "curl_multi_poll failed");
    }
    multi_release(mu);
    lua_settop(L, out_idx);
    return 1;
}

void cz_multi_register(lua_State *L) {
    cz_class(L, MULTI_MT, NULL, multi_gc, NULL);
}
