/*
 * transport.c -- the libcurl transport.
 *
 * A handle userdata owns one CURL easy handle (so keep-alive connections
 * are reused between calls), its fixed header list and a reusable push
 * decoder (kept in the handle's uservalue).  Everything is released by
 * __gc / close, so no Lua error can leak a curl resource.
 *
 * curl's write callback hands each piece of the body straight to the
 * decoder through cz_decoder_feed_raw, which runs the parse under
 * lua_pcall: no Lua error ever unwinds through libcurl's frames.
 *
 *   handle = core.new_handle{ auth =, user_agent =, timeout =, connect_timeout =,
 *                             max_response_bytes =, json = { max_depth =,
 *                             big_integers = }, ca_file =,
 *                             ca_path = }
 *   status, value, kind, message, curl_code, snippet =
 *       handle:perform(method, url [, body [, header_lines]])
 *
 * perform returns, for an HTTP response, its status and the decoded body
 * (nil for an empty body); when the body did not decode, kind ("decode"
 * or "too_large") and message instead, plus the first bytes of the body
 * as snippet.  When no response arrived: nil, nil, kind, message,
 * curl_code.  It raises only for programmer errors.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include "compat.h"
#include "buffer.h"
#include "json.h"
#include "transport.h"

#define HANDLE_MT "cozmox.handle"
#define SHARE_MT "cozmox.share"

/* Response header blocks larger than this are cut (curl itself refuses
 * single headers over 100 KB). */
#define HEADERS_MAX (256 * 1024)

/* The per-Lua-state curl share handle: DNS cache, TLS sessions and the
 * connection pool are shared by every client of the state.  One Lua state
 * runs on one thread at a time, so no lock callbacks are needed. */
typedef struct cz_share {
    CURLSH *sh;
} cz_share;

struct cz_handle {
    CURL *easy;
    struct curl_slist *headers;     /* fixed: Accept, Authorization */
    struct curl_slist *req_headers; /* per request, freed after it */
    curl_off_t max_bytes;
    int busy;
    cz_buf hdrs;                    /* header block of the last response */
    char errbuf[CURL_ERROR_SIZE];
};

/* ------------------------------------------------------------ callbacks */

size_t cz_on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
    cz_transfer *t = (cz_transfer *)userdata;
    size_t n = size * nmemb;
    long status = 0;
    if ((curl_off_t)n > t->max_bytes - t->received) {
        t->abort_kind = "too_large";
        snprintf(t->message, sizeof t->message,
                 "response body larger than max_response_bytes (%ld bytes)", (long)t->max_bytes);
        return 0;
    }
    t->received += (curl_off_t)n;
    if (t->snip_len < CZ_SNIPPET_MAX) {
        size_t k = CZ_SNIPPET_MAX - t->snip_len;
        if (k > n) k = n;
        memcpy(t->snippet + t->snip_len, ptr, k);
        t->snip_len += k;
    }
    if (t->decode_failed) return t->snip_len < CZ_SNIPPET_MAX ? n : 0;
    if (!cz_decoder_feed_raw(t->L, t->dec_idx, ptr, n)) {
        cz_decoder *d = (cz_decoder *)lua_touserdata(t->L, t->dec_idx);
        t->decode_failed = 1;
        snprintf(t->message, sizeof t->message, "%s", cz_decoder_error(d));
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        /* A 2xx that does not decode is a decode error: stop now.  An
         * error page is read on until the snippet is full. */
        if ((status >= 200 && status < 300) || t->snip_len >= CZ_SNIPPET_MAX) {
            if (status >= 200 && status < 300) t->abort_kind = "decode";
            return 0;
        }
    }
    return n;
}

/* Keep the header block of the final response (a new status line, after
 * a 1xx or a followed redirect, starts a new block). */
size_t cz_on_header(char *ptr, size_t size, size_t nmemb, void *userdata) {
    cz_transfer *t = (cz_transfer *)userdata;
    cz_buf *b = t->hdrs;
    size_t n = size * nmemb;
    t->started = 1;
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) b->len = 0;
    if (b->len + n <= HEADERS_MAX) (void)cz_buf_add(b, ptr, n);
    return n;
}

/* ---------------------------------------------------------------- errors */

const char *cz_curl_kind(CURLcode rc) {
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
        return "tls";
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
        return "config";
    case CURLE_FILESIZE_EXCEEDED:
        return "too_large";
    default:
        return "network";
    }
}

/* ------------------------------------------------------------- handle */

cz_handle *cz_check_handle(lua_State *L, int idx) {
    cz_handle *h = (cz_handle *)luaL_checkudata(L, idx, HANDLE_MT);
    if (h->easy == NULL) luaL_argerror(L, idx, "handle is closed");
    return h;
}

CURL *cz_handle_easy(cz_handle *h) { return h->easy; }
curl_off_t cz_handle_max_bytes(cz_handle *h) { return h->max_bytes; }
struct curl_slist *cz_handle_headers(cz_handle *h) { return h->headers; }
int *cz_handle_busy(cz_handle *h) { return &h->busy; }

static cz_handle *check_handle(lua_State *L) {
    cz_handle *h = (cz_handle *)luaL_checkudata(L, 1, HANDLE_MT);
    if (h->easy == NULL) luaL_argerror(L, 1, "handle is closed");
    return h;
}

static void free_req_headers(cz_handle *h);

static void handle_release(cz_handle *h) {
    free_req_headers(h);
    if (h->easy) curl_easy_cleanup(h->easy);
    if (h->headers) curl_slist_free_all(h->headers);
    cz_buf_free(&h->hdrs);
    h->easy = NULL;
    h->headers = NULL;
}

static int handle_gc(lua_State *L) {
    cz_handle *h = (cz_handle *)luaL_checkudata(L, 1, HANDLE_MT);
    if (!h->busy) handle_release(h);
    return 0;
}

static int handle_close(lua_State *L) {
    cz_handle *h = (cz_handle *)luaL_checkudata(L, 1, HANDLE_MT);
    if (h->busy) return luaL_error(L, "cozmox: cannot close a handle during its own request");
    handle_release(h);
    return 0;
}

static int handle_tostring(lua_State *L) {
    cz_handle *h = (cz_handle *)luaL_checkudata(L, 1, HANDLE_MT);
    lua_pushfstring(L, "cozmox.handle (%s)", h->easy ? "open" : "closed");
    return 1;
}

/* Numeric option in seconds -> milliseconds, or def when absent. */
static long opt_ms(lua_State *L, const char *name, long def) {
    long ms = def;
    lua_getfield(L, 1, name);
    if (!lua_isnil(L, -1)) {
        lua_Number v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(v > 0 && v <= 86400 * 365))
            luaL_error(L, "bad option '%s' (positive number of seconds expected)", name);
        ms = (long)(v * 1000 + 0.5);
        if (ms < 1) ms = 1;
    }
    lua_pop(L, 1);
    return ms;
}

static const char *opt_str(lua_State *L, const char *name) {
    const char *s = NULL;
    lua_getfield(L, 1, name);
    if (!lua_isnil(L, -1)) {
        size_t n;
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "bad option '%s' (string expected)", name);
        s = lua_tolstring(L, -1, &n);
        if (strlen(s) != n || strpbrk(s, "\r\n") != NULL)
            luaL_error(L, "bad option '%s' (must not contain CR, LF or NUL)", name);
    }
    lua_pop(L, 1); /* the string stays alive in the options table */
    return s;
}

static int set_or_fail(lua_State *L, CURLcode rc, const char *what) {
    if (rc != CURLE_OK) return luaL_error(L, "cozmox: cannot set %s: %s", what, curl_easy_strerror(rc));
    return 0;
}

/* new_handle(opts).  Stack: [1] opts table. */
int cz_transport_new(lua_State *L) {
    cz_handle *h;
    const char *auth, *ua, *ca_file, *ca_path, *proxy;
    int insecure, follow;
    cz_share *share;
    long timeout, connect_timeout;
    lua_Number max_bytes = 64.0 * 1024 * 1024;
    int max_depth, big;
    CURL *e;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    auth = opt_str(L, "auth");
    ua = opt_str(L, "user_agent");
    ca_file = opt_str(L, "ca_file");
    ca_path = opt_str(L, "ca_path");
    proxy = opt_str(L, "proxy");
    lua_getfield(L, 1, "insecure");
    insecure = lua_toboolean(L, -1);
    lua_getfield(L, 1, "follow_redirects");
    follow = lua_toboolean(L, -1);
    lua_pop(L, 2);
    timeout = opt_ms(L, "timeout", 60000);
    connect_timeout = opt_ms(L, "connect_timeout", 10000);
    lua_getfield(L, 1, "max_response_bytes");
    if (!lua_isnil(L, -1)) {
        max_bytes = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(max_bytes >= 0 && max_bytes < 9.0e18))
            luaL_error(L, "bad option 'max_response_bytes' (non-negative number expected)");
    }
    lua_getfield(L, 1, "json");
    max_depth = cz_decoder_opts(L, lua_gettop(L), &big);
    lua_settop(L, 1);

    h = (cz_handle *)cz_newuserdata(L, sizeof *h);
    memset(h, 0, sizeof *h);
    h->max_bytes = (curl_off_t)max_bytes;
    cz_setmetatable(L, HANDLE_MT);
    /* The decoder lives in the handle's uservalue, reused per request. */
    cz_decoder_set_big_strings(cz_decoder_push(L, max_depth), big);
    cz_setuservalue(L, -2);

    /* From here on every resource hangs off h, so an error leaks nothing. */
    h->easy = e = curl_easy_init();
    if (e == NULL) return luaL_error(L, "cozmox: curl_easy_init failed");
    h->headers = curl_slist_append(NULL, "Accept: application/json");
    if (h->headers == NULL) return luaL_error(L, "cozmox: out of memory");
    if (auth != NULL) {
        struct curl_slist *l = curl_slist_append(h->headers, auth);
        if (l == NULL) return luaL_error(L, "cozmox: out of memory");
        h->headers = l;
    }
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L), "NOSIGNAL");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf), "ERRORBUFFER");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers), "HTTPHEADER");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, cz_on_body), "WRITEFUNCTION");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, cz_on_header), "HEADERFUNCTION");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout), "timeout");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout), "connect_timeout");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""), "ACCEPT_ENCODING");
    /* Redirects only when asked; curl never sends our Authorization
     * header to another host (no CURLOPT_UNRESTRICTED_AUTH). */
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L), "FOLLOWLOCATION");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L), "MAXREDIRS");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L), "PATH_AS_IS");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L), "TCP_KEEPALIVE");
    /* Bigger reads than curl's 16 KB default: fewer write callbacks, so
     * fewer decoder feeds (each restores the open containers). */
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 65536L), "BUFFERSIZE");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L), "SSL_VERIFYPEER");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L), "SSL_VERIFYHOST");
#if LIBCURL_VERSION_NUM >= 0x075500
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"), "PROTOCOLS");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"), "REDIR_PROTOCOLS");
#else
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)), "PROTOCOLS");
    set_or_fail(L, curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)), "REDIR_PROTOCOLS");
#endif
    if (ua) set_or_fail(L, curl_easy_setopt(e, CURLOPT_USERAGENT, ua), "user_agent");
    if (ca_file) set_or_fail(L, curl_easy_setopt(e, CURLOPT_CAINFO, ca_file), "ca_file");
    if (ca_path) set_or_fail(L, curl_easy_setopt(e, CURLOPT_CAPATH, ca_path), "ca_path");
    if (proxy) set_or_fail(L, curl_easy_setopt(e, CURLOPT_PROXY, proxy), "proxy");
    luaL_getmetatable(L, SHARE_MT);
    lua_getfield(L, -1, "instance");
    share = (cz_share *)lua_touserdata(L, -1);
    if (share != NULL && share->sh != NULL) curl_easy_setopt(e, CURLOPT_SHARE, share->sh);
    lua_pop(L, 2);
    return 1;
}

/* Prepend line to the per-request header list; 0 on allocation failure. */
static int add_req_header(cz_handle *h, const char *line) {
    struct curl_slist *l = curl_slist_append(h->req_headers, line);
    if (l == NULL) return 0;
    h->req_headers = l;
    return 1;
}

/* Set method, body and headers on the easy handle for this request.
 * hdr_idx: 0 or the stack index of an array of "Name: value" lines.  The
 * per-request list borrows the fixed list as its tail (unlinked again by
 * free_req_headers).  Raises only before the transfer starts. */
static void set_request(lua_State *L, cz_handle *h, const char *method, const char *body,
                        size_t blen, int hdr_idx) {
    CURL *e = h->easy;
    int i, n = hdr_idx ? (int)lua_rawlen(L, hdr_idx) : 0;
    free_req_headers(h);
    for (i = 1; i <= n; i++) {
        const char *line;
        size_t len;
        lua_rawgeti(L, hdr_idx, i);
        line = lua_tolstring(L, -1, &len);
        if (line == NULL || strlen(line) != len || strpbrk(line, "\r\n") != NULL) {
            lua_pop(L, 1);
            luaL_error(L, "cozmox: header lines must be strings without CR, LF or NUL");
        }
        if (!add_req_header(h, line)) luaL_error(L, "cozmox: out of memory");
        lua_pop(L, 1);
    }
    if (body != NULL && (!add_req_header(h, "Content-Type: application/json") || !add_req_header(h, "Expect:")))
        luaL_error(L, "cozmox: out of memory");
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    if (body == NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        if (strcmp(method, "GET") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(e, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (h->req_headers != NULL) {
        struct curl_slist *tail = h->req_headers;
        while (tail->next) tail = tail->next;
        tail->next = h->headers;
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->req_headers);
    } else curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
}

static void free_req_headers(cz_handle *h) {
    struct curl_slist *l = h->req_headers;
    if (l == NULL) return;
    while (l->next && l->next != h->headers) l = l->next;
    l->next = NULL;
    curl_slist_free_all(h->req_headers);
    h->req_headers = NULL;
}

static int push_failure(lua_State *L, const char *kind, const char *message, int curl_code, int started) {
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushstring(L, kind);
    lua_pushstring(L, message);
    lua_pushinteger(L, curl_code);
    lua_pushboolean(L, started);
    return 6;
}

static int push_body_failure(lua_State *L, long status, const char *kind, const char *message,
                             CURLcode rc, const cz_transfer *t) {
    lua_pushinteger(L, status);
    lua_pushnil(L);
    lua_pushstring(L, kind);
    lua_pushstring(L, message);
    lua_pushinteger(L, rc);
    lua_pushlstring(L, t->snippet, t->snip_len);
    return 6;
}

void cz_transfer_init(cz_transfer *t, lua_State *L, CURL *easy, cz_buf *hdrs, curl_off_t max_bytes, int dec_idx) {
    memset(t, 0, sizeof *t);
    t->L = L;
    t->easy = easy;
    t->hdrs = hdrs;
    t->max_bytes = max_bytes;
    t->dec_idx = dec_idx;
    hdrs->len = 0;
    cz_decoder_rewind(L, dec_idx);
}

/* Push the outcome of a finished transfer (see the top of the file):
 * status, value | status, nil, kind, message, curl_code, snippet |
 * nil, nil, kind, message, curl_code, started.  Returns the count. */
int cz_transfer_outcome(lua_State *L, cz_transfer *t, CURLcode rc, const char *errbuf) {
    long status = 0;
    if (t->abort_kind != NULL && strcmp(t->abort_kind, "too_large") == 0) {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        return push_body_failure(L, status, t->abort_kind, t->message, rc, t);
    }
    if (rc != CURLE_OK && !t->decode_failed) {
        char msg[CURL_ERROR_SIZE + 64];
        if (errbuf && errbuf[0]) snprintf(msg, sizeof msg, "%s", errbuf);
        else snprintf(msg, sizeof msg, "%s", curl_easy_strerror(rc));
        msg[strcspn(msg, "\r\n")] = '\0';
        return push_failure(L, cz_curl_kind(rc), msg, (int)rc, t->started);
    }
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (t->decode_failed) return push_body_failure(L, status, "decode", t->message, rc, t);
    lua_pushinteger(L, status);
    if (t->received == 0) {
        lua_pushnil(L);
        return 2;
    }
    if (cz_decoder_finish_raw(L, t->dec_idx)) return 2;
    lua_pop(L, 1);
    return push_body_failure(L, status, "decode",
                             cz_decoder_error((cz_decoder *)lua_touserdata(L, t->dec_idx)), rc, t);
}

/* handle:perform(method, url [, body [, header_lines]]).  See the top of
 * the file. */
static int handle_perform(lua_State *L) {
    cz_handle *h = check_handle(L);
    const char *method = luaL_checkstring(L, 2);
    const char *url = luaL_checkstring(L, 3);
    size_t blen = 0;
    const char *body = luaL_optlstring(L, 4, NULL, &blen);
    int hdr_idx = lua_isnoneornil(L, 5) ? 0 : 5;
    cz_transfer t;
    CURLcode rc;

    if (h->busy) return luaL_error(L, "cozmox: handle is already performing a request");
    if (hdr_idx) luaL_checktype(L, 5, LUA_TTABLE);
    lua_settop(L, 5);
    set_request(L, h, method, body, blen, hdr_idx);
    cz_getuservalue(L, 1); /* [6] decoder */
    luaL_checkstack(L, 16, "cozmox: Lua stack exhausted"); /* used by the curl callbacks */
    cz_transfer_init(&t, L, h->easy, &h->hdrs, h->max_bytes, 6);
    h->errbuf[0] = '\0';
    curl_easy_setopt(h->easy, CURLOPT_URL, url);
    curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h->easy, CURLOPT_HEADERDATA, &t);

    h->busy = 1;
    rc = curl_easy_perform(h->easy);
    h->busy = 0;
    free_req_headers(h);
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, (char *)NULL);
    return cz_transfer_outcome(L, &t, rc, h->errbuf);
}

/* Call fn(name, nlen, value, vlen, ud) for each header line of the last
 * response; stops early when fn returns nonzero. */
static int each_header(const cz_buf *hdrs, int (*fn)(const char *, size_t, const char *, size_t, void *), void *ud) {
    const char *p = hdrs->data, *end = p + hdrs->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end, *colon, *v, *ve;
        if (line_end > p && line_end[-1] == '\r') line_end--;
        colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon != NULL && !(line_end - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
            v = colon + 1;
            while (v < line_end && (*v == ' ' || *v == '\t')) v++;
            ve = line_end;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            if (fn(p, (size_t)(colon - p), v, (size_t)(ve - v), ud)) return 1;
        }
        p = eol ? eol + 1 : end;
    }
    return 0;
}

struct find_header { const char *name; size_t len; const char *v; size_t vlen; };

static int match_header(const char *n, size_t nlen, const char *v, size_t vlen, void *ud) {
    struct find_header *f = (struct find_header *)ud;
    if (nlen == f->len && strncasecmp(n, f->name, nlen) == 0) {
        f->v = v, f->vlen = vlen;
        return 1;
    }
    return 0;
}

/* handle:header(name) -> value of that response header of the last
 * response (first occurrence, case-insensitive name), or nil. */
void cz_push_header(lua_State *L, const cz_buf *hdrs, const char *name) {
    struct find_header f;
    f.name = name;
    f.len = strlen(name);
    f.v = NULL;
    if (each_header(hdrs, match_header, &f)) lua_pushlstring(L, f.v, f.vlen);
    else lua_pushnil(L);
}

static int handle_header(lua_State *L) {
    cz_handle *h = check_handle(L);
    cz_push_header(L, &h->hdrs, luaL_checkstring(L, 2));
    return 1;
}

/* Stack: [-1] headers table.  Lower-case names; repeats joined by ", ". */
static int add_header(const char *n, size_t nlen, const char *v, size_t vlen, void *ud) {
    lua_State *L = (lua_State *)ud;
    char name[128];
    size_t i;
    if (nlen >= sizeof name) return 0;
    for (i = 0; i < nlen; i++) name[i] = (char)((n[i] >= 'A' && n[i] <= 'Z') ? n[i] + 32 : n[i]);
    lua_pushlstring(L, name, nlen);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isstring(L, -1)) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, vlen);
        lua_concat(L, 3);
    } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, vlen);
    }
    lua_rawset(L, -3);
    return 0;
}

static void set_timing(lua_State *L, CURL *e, CURLINFO info, const char *name) {
    curl_off_t us = 0;
    if (curl_easy_getinfo(e, info, &us) != CURLE_OK) us = 0;
    lua_pushnumber(L, (lua_Number)us / 1e6);
    lua_setfield(L, -2, name);
}

/* handle:meta() -> { status, http_version, headers = {...}, timings = {
 * namelookup, connect, tls, first_byte, total } (seconds from the start),
 * bytes, primary_ip, redirects } for the last request. */
void cz_push_meta(lua_State *L, CURL *e, const cz_buf *hdrs) {
    long status = 0, version = 0, redirects = 0;
    curl_off_t bytes = 0;
    char *ip = NULL;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &redirects);
    curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &bytes);
    curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, version == CURL_HTTP_VERSION_2_0 ? "2" : version == CURL_HTTP_VERSION_1_0 ? "1.0"
                     : version == CURL_HTTP_VERSION_1_1 ? "1.1" : version == 0 ? "" : "3");
    lua_setfield(L, -2, "http_version");
    lua_pushinteger(L, redirects);
    lua_setfield(L, -2, "redirects");
    lua_pushnumber(L, (lua_Number)bytes);
    lua_setfield(L, -2, "bytes");
    lua_pushstring(L, ip ? ip : "");
    lua_setfield(L, -2, "primary_ip");
    lua_newtable(L);
    each_header(hdrs, add_header, L);
    lua_setfield(L, -2, "headers");
    lua_createtable(L, 0, 5);
    set_timing(L, e, CURLINFO_NAMELOOKUP_TIME_T, "namelookup");
    set_timing(L, e, CURLINFO_CONNECT_TIME_T, "connect");
    set_timing(L, e, CURLINFO_APPCONNECT_TIME_T, "tls");
    set_timing(L, e, CURLINFO_STARTTRANSFER_TIME_T, "first_byte");
    set_timing(L, e, CURLINFO_TOTAL_TIME_T, "total");
    lua_setfield(L, -2, "timings");
}

static int handle_meta(lua_State *L) {
    cz_handle *h = check_handle(L);
    cz_push_meta(L, h->easy, &h->hdrs);
    return 1;
}

/* escape_segment(s): unreserved characters (RFC 3986) stay, everything
 * else becomes %XX; a segment of only dots is escaped whole, so "." and
 * ".." can never act as path navigation. */
int cz_escape_segment(lua_State *L) {
    static const char hexd[] = "0123456789ABCDEF";
    size_t n, i;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    int all_dots = n > 0;
    luaL_Buffer b;
    for (i = 0; i < n; i++)
        if (s[i] != '.') { all_dots = 0; break; }
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++) {
        unsigned c = s[i];
        if (!all_dots && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                          c == '-' || c == '.' || c == '_' || c == '~')) {
            luaL_addchar(&b, (char)c);
        } else {
            luaL_addchar(&b, '%');
            luaL_addchar(&b, hexd[c >> 4]);
            luaL_addchar(&b, hexd[c & 15]);
        }
    }
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg handle_methods[] = {
    {"perform", handle_perform},
    {"header", handle_header},
    {"meta", handle_meta},
    {"perform_many", cz_perform_many},
    {"close", handle_close},
    {NULL, NULL}};

static int share_gc(lua_State *L) {
    cz_share *s = (cz_share *)luaL_checkudata(L, 1, SHARE_MT);
    /* Finalized after every handle of the state (created before them);
     * should one still use it, curl refuses and the share is left. */
    if (s->sh != NULL && curl_share_cleanup(s->sh) == CURLSHE_OK) s->sh = NULL;
    return 0;
}

/* The state's share handle, kept as field "instance" of its metatable. */
static void share_create(lua_State *L) {
    cz_share *s;
    luaL_newmetatable(L, SHARE_MT);
    lua_pushcfunction(L, share_gc);
    lua_setfield(L, -2, "__gc");
    s = (cz_share *)cz_newuserdata(L, sizeof *s);
    s->sh = NULL;
    lua_pushvalue(L, -2);
    lua_setmetatable(L, -2);
    s->sh = curl_share_init();
    if (s->sh != NULL) {
        curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
#if LIBCURL_VERSION_NUM >= 0x073900
        curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
#endif
    }
    lua_setfield(L, -2, "instance");
    lua_pop(L, 1);
}

int cz_transport_register(lua_State *L) {
    /* curl_global_init is reference counted by libcurl itself; the module
     * is loaded once per Lua state, and this is the only global state. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 0;
    luaL_getmetatable(L, SHARE_MT);
    if (lua_isnil(L, -1)) share_create(L);
    lua_pop(L, 1);
    if (luaL_newmetatable(L, HANDLE_MT)) {
        cz_newlib(L, handle_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, handle_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, handle_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, handle_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    return 1;
}
