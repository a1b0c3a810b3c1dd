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
    int used;       /* it has performed (see cz_handle_fresh) */
    int sink_idx;   /* stack index of its sink; its decoder is just above */
    cz_buf hdrs;
    cz_transfer t;
} slot;

/* A request as checked before anything started: the transfers never
 * read the caller's tables again. */
typedef struct req {
    char *url;
    lua_Number timeout, connect;
} req;

typedef struct cz_multi {
    CURLM *m;
    slot *slots;
    int nslots;
    req *reqs;
    int nreqs;
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
    if (mu->reqs != NULL) {
        for (i = 0; i < mu->nreqs; i++) free(mu->reqs[i].url);
        free(mu->reqs);
        mu->reqs = NULL;
    }
    if (mu->busy != NULL) *mu->busy = 0;
    mu->busy = NULL;
}

static int multi_gc(lua_State *L) {
    multi_release((cz_multi *)luaL_checkudata(L, 1, MULTI_MT));
    return 0;
}

/* t[name] without metamethods: no Lua code of the caller's runs here. */
static void raw_field(lua_State *L, int idx, const char *name) {
    idx = cz_absindex(L, idx);
    lua_pushstring(L, name);
    lua_rawget(L, idx);
}

/* Check reqs[i] and copy what the transfer needs into r.  Raises
 * (before anything is busy) for a malformed one. */
static void take_req(lua_State *L, int reqs_idx, int i, req *r) {
    const char *url, *method;
    size_t len = 0;
    lua_rawgeti(L, reqs_idx, i);
    if (!lua_istable(L, -1)) luaL_error(L, "bad argument #1 to 'perform_many' (reqs[%d] is not a table)", i);
    raw_field(L, -1, "method");
    raw_field(L, -2, "url");
    raw_field(L, -3, "timeout");
    raw_field(L, -4, "connect_timeout");
    method = lua_type(L, -4) == LUA_TSTRING ? lua_tostring(L, -4) : NULL;
    url = lua_type(L, -3) == LUA_TSTRING ? lua_tolstring(L, -3, &len) : NULL;
    r->timeout = lua_tonumber(L, -2);
    r->connect = lua_tonumber(L, -1);
    if (method == NULL || strcmp(method, "GET") != 0)
        luaL_error(L, "bad argument #1 to 'perform_many' (reqs[%d].method must be \"GET\")", i);
    if (url == NULL || strlen(url) != len)
        luaL_error(L, "bad argument #1 to 'perform_many' (reqs[%d].url must be a string without NUL)", i);
    if (!(r->timeout > 0 && r->timeout <= 1e9) || !(r->connect > 0 && r->connect <= 1e9))
        luaL_error(L, "bad argument #1 to 'perform_many' (reqs[%d] needs timeout and connect_timeout)", i);
    r->url = (char *)malloc(len + 1);
    if (r->url == NULL) luaL_error(L, "cozmox: out of memory");
    memcpy(r->url, url, len + 1);
    lua_pop(L, 5);
}

static long to_ms(lua_Number seconds) {
    long ms = (long)(seconds * 1000 + 0.5);
    return ms < 1 ? 1 : ms;
}

static CURLcode slot_setup(slot *s, cz_handle *h);

/* Start request index (1-based) on idle slot s; a CURLcode/CURLMcode
 * failure is returned as nonzero.  Runs no Lua but the sink's rewind. */
static int start(lua_State *L, cz_multi *mu, cz_handle *h, slot *s, int index) {
    const req *r = &mu->reqs[index - 1];
    if (s->used && cz_handle_fresh(h)) {
        /* old libcurl: never reuse an easy handle (see easy.c) */
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
        s->used = 0;
        if (slot_setup(s, h) != CURLE_OK) return 1;
    }
    cz_transfer_reset(&s->t, L, &s->hdrs, cz_sink_check(L, s->sink_idx), s->sink_idx + 1);
    s->t.easy = s->easy;
    /* Over TLS (where HTTP/2 may be offered) a new transfer waits for a
     * connection that can multiplex it rather than opening one more; over
     * plain HTTP/1.1 waiting would only serialize connection setup. */
    if (curl_easy_setopt(s->easy, CURLOPT_PIPEWAIT, strncmp(r->url, "https:", 6) == 0 ? 1L : 0L) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_URL, r->url) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, to_ms(r->timeout)) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS,
                         to_ms(r->connect < r->timeout ? r->connect : r->timeout)) != CURLE_OK)
        return 1;
    if (curl_multi_add_handle(mu->m, s->easy) != CURLM_OK) return 1;
    s->index = index;
    s->used = 1;
    return 0;
}

/* A slot's easy handle: the parent's options, GET, this slot's callbacks. */
static CURLcode slot_setup(slot *s, cz_handle *h) {
    CURLcode rc;
    s->easy = curl_easy_duphandle(cz_handle_easy(h));
    if (s->easy == NULL) return CURLE_OUT_OF_MEMORY;
    if (cz_handle_share(h) != NULL && (rc = curl_easy_setopt(s->easy, CURLOPT_SHARE, cz_handle_share(h))) != CURLE_OK)
        return rc;
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
    lua_Integer conc_arg;
    int *busy = cz_handle_busy(h);
    cz_multi *mu;

    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int)lua_rawlen(L, 2);
    conc_arg = luaL_optinteger(L, 3, 8);
    luaL_argcheck(L, conc_arg >= 1 && conc_arg <= MAX_CONCURRENCY, 3, "concurrency out of range");
    conc = (int)conc_arg;
    want_meta = lua_toboolean(L, 4);
    if (*busy) return luaL_error(L, "cozmox: handle is already performing a request");
    lua_settop(L, 4);
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
    /* Every request checked and copied before anything is busy. */
    mu->reqs = (req *)calloc(n > 0 ? (size_t)n : 1, sizeof(req));
    if (mu->reqs == NULL) return luaL_error(L, "cozmox: out of memory");
    for (i = 1; i <= n; i++) {
        take_req(L, 2, i, &mu->reqs[i - 1]);
        mu->nreqs = i;
    }
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
                if (start(L, mu, h, &mu->slots[i], next++) != 0) return fail(L, mu, "cannot start a transfer");
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
