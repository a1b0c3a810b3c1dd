/*
 * easy.c -- the curl easy handle of a client.
 *
 * A handle userdata owns one CURL easy handle (keep-alive connections are
 * reused between calls), the multi handle that runs its transfers, its
 * fixed header list, the per-request header list and the header buffer;
 * its uservalue is its response sink.  __gc
 * and close release everything, so no Lua error can leak a curl resource.
 *
 *   h = curl.handle{ auth =, user_agent =, connect_timeout =,
 *                    max_response_bytes =, max_depth =, big_integers =,
 *                    ca_file =, ca_path =, proxy =, insecure = }
 *   rec = h:perform(req, want_meta)
 *       req: { method =, url =, body =, headers = { "Name: value", ... },
 *              no_auth =, timeout = seconds left, connect_timeout = seconds }
 *       rec: the result record (transfer.h)
 *
 * Every value comes resolved from cozmox.options: this file has no
 * defaults of its own.  perform raises only for programmer errors, before
 * the transfer starts; the handle is busy from then until its record is
 * complete, and a nested use (from a finalizer or a debug hook that runs
 * inside the transfer) raises instead of sharing its state.
 */
#include <string.h>
#include <curl/curl.h>
#include "compat.h"
#include "json.h"
#include "keeper.h"
#include "transfer.h"
#include "easy.h"

struct cz_handle {
    CURL *easy;                     /* every option set; see `fresh` */
    CURL *work;                     /* the one performing the current request */
    CURLSH *share;                  /* the state's share handle (or NULL) */
    CURLM *multi;                   /* drives every transfer of h:perform */
    int in_multi;                   /* work is added to multi */
    int fresh;                      /* libcurl < 8.1.0: a new duplicate of easy
                                     * per request (below) */
    struct curl_slist *headers;     /* fixed: Accept, Authorization */
    struct curl_slist *anonymous;   /* fixed: Accept (requests with no_auth) */
    cz_req_headers req;             /* per request, freed after it */
    int busy;
    cz_buf hdrs;
    cz_transfer t;
};

cz_handle *cz_check_handle(lua_State *L, int idx) {
    cz_handle *h = (cz_handle *)luaL_checkudata(L, idx, CZ_HANDLE_MT);
    if (h->easy == NULL) luaL_argerror(L, idx, "handle is closed");
    return h;
}

CURL *cz_handle_easy(cz_handle *h) { return h->easy; }
struct curl_slist *cz_handle_headers(cz_handle *h) { return h->headers; }
struct curl_slist *cz_handle_anonymous(cz_handle *h) { return h->anonymous; }
int *cz_handle_busy(cz_handle *h) { return &h->busy; }
int cz_handle_fresh(cz_handle *h) { return h->fresh; }
CURLSH *cz_handle_share(cz_handle *h) { return h->share; }

static void free_req_headers(cz_handle *h);

static void release_work(cz_handle *h) {
    if (h->in_multi) curl_multi_remove_handle(h->multi, h->work);
    h->in_multi = 0;
    if (h->work != NULL && h->work != h->easy) curl_easy_cleanup(h->work);
    h->work = NULL;
}

static void handle_release(cz_handle *h) {
    free_req_headers(h);
    release_work(h);
    if (h->multi) curl_multi_cleanup(h->multi);
    h->multi = NULL;
    if (h->easy) curl_easy_cleanup(h->easy);
    if (h->headers) curl_slist_free_all(h->headers);
    if (h->anonymous) curl_slist_free_all(h->anonymous);
    cz_buf_free(&h->hdrs);
    h->easy = NULL;
    h->headers = h->anonymous = NULL;
}

static int handle_gc(lua_State *L) {
    cz_handle *h = (cz_handle *)luaL_checkudata(L, 1, CZ_HANDLE_MT);
    if (!h->busy) handle_release(h);
    return 0;
}

static int handle_close(lua_State *L) {
    cz_handle *h = (cz_handle *)luaL_checkudata(L, 1, CZ_HANDLE_MT);
    if (h->busy) return luaL_error(L, "cozmox: cannot close a handle during its own request");
    handle_release(h);
    return 0;
}

static int handle_tostring(lua_State *L) {
    cz_handle *h = (cz_handle *)luaL_checkudata(L, 1, CZ_HANDLE_MT);
    lua_pushfstring(L, "cozmox.curl.handle (%s)", h->easy ? "open" : "closed");
    return 1;
}

/* ------------------------------------------------------------ options */

/* t[name] without metamethods: no Lua code of the caller's runs here. */
static void raw_field(lua_State *L, int idx, const char *name) {
    idx = cz_absindex(L, idx);
    lua_pushstring(L, name);
    lua_rawget(L, idx);
}

/* Field name of the table at idx: a string or absent. */
static const char *opt_str(lua_State *L, int idx, const char *name) {
    const char *s = NULL;
    raw_field(L, idx, name);
    if (!lua_isnil(L, -1)) {
        size_t n;
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "cozmox.curl: option '%s' must be a string", name);
        s = lua_tolstring(L, -1, &n);
        if (strlen(s) != n || strpbrk(s, "\r\n") != NULL)
            luaL_error(L, "cozmox.curl: option '%s' must not contain CR, LF or NUL", name);
    }
    lua_pop(L, 1); /* the string stays alive in the options table */
    return s;
}

/* A number field that must be there (the Lua side resolves defaults). */
static lua_Number opt_num(lua_State *L, int idx, const char *name, lua_Number lo, lua_Number hi) {
    lua_Number v;
    raw_field(L, idx, name);
    v = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(v >= lo && v <= hi))
        luaL_error(L, "cozmox.curl: option '%s' missing or out of range", name);
    lua_pop(L, 1);
    return v;
}

static int opt_bool(lua_State *L, int idx, const char *name) {
    int v;
    raw_field(L, idx, name);
    v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Seconds -> milliseconds for curl, at least 1. */
static long to_ms(lua_Number seconds) {
    long ms = (long)(seconds * 1000 + 0.5);
    return ms < 1 ? 1 : ms;
}

static void add_fixed_header(lua_State *L, struct curl_slist **list, const char *line) {
    struct curl_slist *l = curl_slist_append(*list, line);
    if (l == NULL) luaL_error(L, "cozmox: out of memory");
    *list = l;
}

/* curl.handle(opts).  Stack: [1] opts. */
int cz_handle_new(lua_State *L) {
    cz_handle *h;
    const char *auth, *ua, *ca_file, *ca_path, *proxy;
    int insecure, depth;
    lua_Number max_bytes;
    CURL *e;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    auth = opt_str(L, 1, "auth");
    ua = opt_str(L, 1, "user_agent");
    ca_file = opt_str(L, 1, "ca_file");
    ca_path = opt_str(L, 1, "ca_path");
    proxy = opt_str(L, 1, "proxy");
    insecure = opt_bool(L, 1, "insecure");
    max_bytes = opt_num(L, 1, "max_response_bytes", 1, 9.0e15);
    depth = (int)opt_num(L, 1, "max_depth", 1, 1000000);

    h = (cz_handle *)cz_newuserdata(L, sizeof *h);
    memset(h, 0, sizeof *h);
    h->hdrs.keeper = cz_keeper_of(L);
    cz_setmetatable(L, CZ_HANDLE_MT);
    raw_field(L, 1, "big_integers");
    {
        const char *big = lua_tostring(L, -1);
        lua_pop(L, 1);
        cz_sink_push(L, (double)max_bytes, depth, big != NULL && strcmp(big, "string") == 0);
    }
    cz_setuservalue(L, -2);

    /* From here on every resource hangs off h, so an error leaks nothing. */
    h->easy = e = curl_easy_init();
    if (e == NULL) return luaL_error(L, "cozmox: curl_easy_init failed");
    /* The handle's own multi handle runs its transfers (run_transfer):
     * curl_easy_perform would make one -- a wake-up socketpair, a
     * connection cache and its closing handle -- inside every duplicate
     * (see `fresh`) and tear it down again with it. */
    h->multi = curl_multi_init();
    if (h->multi == NULL) return luaL_error(L, "cozmox: curl_multi_init failed");
    /* As curl_easy_perform sets it (CURLOPT_MAXCONNECTS's default): idle
     * connections the state's pool keeps, 4 without it.  The multi's
     * wake-up socketpair is the handle's for its life: two descriptors
     * per client, closed by close() or the collector. */
    if (curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 5L) != CURLM_OK)
        return luaL_error(L, "cozmox: curl_multi_setopt failed");
    add_fixed_header(L, &h->headers, "Accept: application/json");
    add_fixed_header(L, &h->anonymous, "Accept: application/json");
    if (auth != NULL) add_fixed_header(L, &h->headers, auth);
    cz_setopt_check(L, cz_transfer_bind(&h->t, e), "callbacks");
    CZ_SETOPT(L, e, CURLOPT_NOSIGNAL, 1L);
    CZ_SETOPT(L, e, CURLOPT_HTTPHEADER, h->headers);
    CZ_SETOPT(L, e, CURLOPT_CONNECTTIMEOUT_MS, to_ms(opt_num(L, 1, "connect_timeout", 0.001, 1e7)));
    CZ_SETOPT(L, e, CURLOPT_ACCEPT_ENCODING, "");
    /* Redirects are the client's (the same rules on every transport):
     * curl never follows one itself. */
    CZ_SETOPT(L, e, CURLOPT_FOLLOWLOCATION, 0L);
    CZ_SETOPT(L, e, CURLOPT_PATH_AS_IS, 1L);
    CZ_SETOPT(L, e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Bigger reads than curl's 16 KB default: fewer write callbacks, so
     * fewer decoder feeds (each restores the open containers). */
    CZ_SETOPT(L, e, CURLOPT_BUFFERSIZE, 65536L);
    CZ_SETOPT(L, e, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
    CZ_SETOPT(L, e, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
    /* HTTP/2 where the server offers it (over TLS); get_many's transfers
     * to https:// wait for a connection that can multiplex them (multi.c). */
    CZ_SETOPT(L, e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
#if LIBCURL_VERSION_NUM >= 0x075500
    CZ_SETOPT(L, e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    CZ_SETOPT(L, e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (ua) CZ_SETOPT(L, e, CURLOPT_USERAGENT, ua);
    if (ca_file) CZ_SETOPT(L, e, CURLOPT_CAINFO, ca_file);
    if (ca_path) CZ_SETOPT(L, e, CURLOPT_CAPATH, ca_path);
    if (proxy) CZ_SETOPT(L, e, CURLOPT_PROXY, proxy);
    h->share = cz_share_attach(L, e);
    /* libcurl before 8.1.0 keeps a stale pointer into the previous
     * response's headers on a reused easy handle (curl PR #11103): a
     * server folding its first header line then corrupts the heap.  There
     * every request gets a fresh duplicate of this never-used handle; the
     * share handle keeps the connections alive between them. */
    h->fresh = curl_version_info(CURLVERSION_NOW)->version_num < 0x080100;
    return 1;
}

/* ------------------------------------------------------------ requests */

/* Prepend line to the per-request header list; 0 on allocation failure. */
static int add_req_header(cz_req_headers *rh, const char *line) {
    struct curl_slist *l = curl_slist_append(rh->list, line);
    if (l == NULL) return 0;
    rh->list = l;
    return 1;
}

void cz_req_headers_free(cz_req_headers *rh) {
    struct curl_slist *l = rh->list;
    if (l == NULL) return;
    while (l->next && l->next != rh->tail) l = l->next;
    l->next = NULL;
    curl_slist_free_all(rh->list);
    rh->list = NULL;
}

static void free_req_headers(cz_handle *h) {
    cz_req_headers_free(&h->req);
}

/* Set method, URL, body, headers and time limits of the request at
 * req_idx on e.  The per-request list rh borrows the fixed list (fixed,
 * or anonymous for no_auth) as its tail (unlinked again by
 * cz_req_headers_free).  The body is not copied: the request table must
 * outlive the transfer.  Raises only here, before the transfer starts.
 * Used by the handle and the loop driver (driver.c). */
void cz_request_set(lua_State *L, CURL *e, int req_idx, struct curl_slist *fixed_auth,
                    struct curl_slist *anonymous, cz_req_headers *rh) {
    const char *method, *url, *body;
    size_t blen = 0;
    int i, n, hdr_idx;
    lua_Number timeout, connect_timeout;
    struct curl_slist *fixed;

    raw_field(L, req_idx, "method");
    raw_field(L, req_idx, "url");
    raw_field(L, req_idx, "body");
    raw_field(L, req_idx, "headers");
    hdr_idx = lua_gettop(L);
    method = lua_tostring(L, hdr_idx - 3);
    url = lua_tostring(L, hdr_idx - 2);
    body = lua_isnil(L, hdr_idx - 1) ? NULL : lua_tolstring(L, hdr_idx - 1, &blen);
    if (method == NULL || url == NULL) luaL_error(L, "cozmox.curl: request needs method and url");
    if (strlen(url) != lua_rawlen(L, hdr_idx - 2)) luaL_error(L, "cozmox.curl: url must not contain NUL");
    timeout = opt_num(L, req_idx, "timeout", 0, 1e9);
    connect_timeout = opt_num(L, req_idx, "connect_timeout", 0, 1e9);
    fixed = opt_bool(L, req_idx, "no_auth") ? anonymous : fixed_auth;

    cz_req_headers_free(rh);
    rh->tail = fixed;
    n = lua_istable(L, hdr_idx) ? (int)lua_rawlen(L, hdr_idx) : 0;
    for (i = 1; i <= n; i++) {
        const char *line;
        size_t len;
        lua_rawgeti(L, hdr_idx, i);
        line = lua_tolstring(L, -1, &len);
        if (line == NULL || strlen(line) != len || strpbrk(line, "\r\n") != NULL)
            luaL_error(L, "cozmox: header lines must be strings without CR, LF or NUL");
        if (!add_req_header(rh, line)) luaL_error(L, "cozmox: out of memory");
        lua_pop(L, 1);
    }
    if (body != NULL && (!add_req_header(rh, "Content-Type: application/json") || !add_req_header(rh, "Expect:")))
        luaL_error(L, "cozmox: out of memory");
    CZ_SETOPT(L, e, CURLOPT_URL, url);
    CZ_SETOPT(L, e, CURLOPT_TIMEOUT_MS, to_ms(timeout));
    CZ_SETOPT(L, e, CURLOPT_CONNECTTIMEOUT_MS, to_ms(connect_timeout < timeout ? connect_timeout : timeout));
    CZ_SETOPT(L, e, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    if (body == NULL) {
        CZ_SETOPT(L, e, CURLOPT_HTTPGET, 1L);
        if (strcmp(method, "GET") != 0) CZ_SETOPT(L, e, CURLOPT_CUSTOMREQUEST, method);
        CZ_SETOPT(L, e, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    } else {
        CZ_SETOPT(L, e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        CZ_SETOPT(L, e, CURLOPT_POSTFIELDS, body); /* the string lives in req */
        if (strcmp(method, "POST") != 0) CZ_SETOPT(L, e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (rh->list != NULL) {
        struct curl_slist *last = rh->list;
        while (last->next) last = last->next;
        last->next = fixed;
        CZ_SETOPT(L, e, CURLOPT_HTTPHEADER, rh->list);
    } else {
        CZ_SETOPT(L, e, CURLOPT_HTTPHEADER, fixed);
    }
    lua_settop(L, hdr_idx - 4);
}

/* What curl_easy_perform does, on the handle's long-lived multi handle
 * instead of one made (and, for a duplicate, destroyed) per transfer:
 * add, perform until the transfer's message comes, remove.  curl keeps
 * the time limits (CURLOPT_TIMEOUT_MS, CURLOPT_CONNECTTIMEOUT_MS) and
 * caps each wait by its own timers; a multi failure becomes a CURLcode as
 * curl_easy_perform has it.  Runs no Lua but the sink's protected
 * decoder (in the write callback). */
static CURLcode run_transfer(cz_handle *h) {
    CURLM *m = h->multi;
    CURLMcode mc;
    CURLcode rc = CURLE_OK;
    int done = 0;

    mc = curl_multi_add_handle(m, h->work);
    if (mc != CURLM_OK) return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
    h->in_multi = 1;
    for (;;) {
        int running = 0, queued;
        CURLMsg *msg;
        mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK) break;
        while ((msg = curl_multi_info_read(m, &queued)) != NULL) {
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == h->work) {
                rc = msg->data.result;
                done = 1;
            }
        }
        if (done) break;
        mc = curl_multi_poll(m, NULL, 0, 1000, NULL);
        if (mc != CURLM_OK) break;
    }
    curl_multi_remove_handle(m, h->work);
    h->in_multi = 0;
    if (mc != CURLM_OK) rc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_BAD_FUNCTION_ARGUMENT;
    return rc;
}

/* Stack: [1] light userdata handle, [2] req.  cz_request_set, protected:
 * it reads the caller's table, so it may raise. */
static int setup_protected(lua_State *L) {
    cz_handle *h = (cz_handle *)lua_touserdata(L, 1);
    cz_request_set(L, h->work, 2, h->headers, h->anonymous, &h->req);
    return 0;
}

/* h:perform(req, want_meta) -> record.  Stack: [1] h, [2] req, [3] want_meta.
 * The handle is busy from before anything that could run Lua (a
 * finalizer, at any allocation) until its record is built, so no nested
 * use -- a close included -- can touch it meanwhile. */
static int handle_perform(lua_State *L) {
    cz_handle *h = cz_check_handle(L, 1);
    int want_meta = lua_toboolean(L, 3), status, broken = 0;
    CURLcode rc;

    luaL_checktype(L, 2, LUA_TTABLE);
    if (h->busy) return luaL_error(L, "cozmox: handle is already performing a request");
    lua_settop(L, 2);
    cz_getuservalue(L, 1);         /* [3] sink */
    cz_sink_push_decoder(L, 3);    /* [4] its decoder */
    cz_transfer_push_recorder(L);  /* [5] */
    lua_pushcfunction(L, setup_protected); /* [6] */
    /* used by the callbacks and the record, which must not grow it */
    luaL_checkstack(L, 24, "cozmox: Lua stack exhausted");
    h->busy = 1;
    release_work(h);
    h->work = h->fresh ? curl_easy_duphandle(h->easy) : h->easy;
    if (h->work == NULL || (h->fresh && h->share != NULL &&
                            curl_easy_setopt(h->work, CURLOPT_SHARE, h->share) != CURLE_OK)) {
        release_work(h);
        h->busy = 0;
        return luaL_error(L, "cozmox: cannot set up a transfer (out of memory)");
    }
    lua_pushvalue(L, 6);
    lua_pushlightuserdata(L, h);
    lua_pushvalue(L, 2);
    if (lua_pcall(L, 2, 0, 0) != 0) {
        if (!h->fresh) curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers); /* before the list goes */
        free_req_headers(h);
        if (h->fresh) release_work(h);
        h->busy = 0;
        return lua_error(L);
    }
    cz_transfer_reset(&h->t, L, &h->hdrs, cz_sink_check(L, 3), 4);
    h->t.easy = h->work;
    rc = run_transfer(h);
    /* Point a reused handle back at what outlives the request (get_many
     * duplicates it).  Should curl refuse, it would keep pointers to
     * freed lists: it is closed instead ("handle is closed" next). */
    if (!h->fresh && (curl_easy_setopt(h->work, CURLOPT_HTTPHEADER, h->headers) != CURLE_OK ||
                      curl_easy_setopt(h->work, CURLOPT_POSTFIELDS, (char *)NULL) != CURLE_OK))
        broken = 1;
    /* The record runs the decoder's last step: busy until it is built. */
    status = cz_transfer_record_pcall(L, 5, &h->t, rc, want_meta);
    free_req_headers(h);
    if (h->fresh) release_work(h);
    h->busy = 0;
    if (broken) handle_release(h);
    if (status != 0) return lua_error(L);
    return 1;
}

static const luaL_Reg handle_methods[] = {
    {"perform", handle_perform},
    {"perform_many", cz_perform_many},
    {"close", handle_close},
    {NULL, NULL}};

void cz_handle_register(lua_State *L) {
    cz_class(L, CZ_HANDLE_MT, handle_methods, handle_gc, handle_tostring);
    luaL_getmetatable(L, CZ_HANDLE_MT);
    lua_pushcfunction(L, handle_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}
