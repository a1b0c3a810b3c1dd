/*
 * transfer.c -- one curl transfer: its callbacks (headers into a buffer,
 * body into the response sink) and the result record (transfer.h).
 *
 * The callbacks run inside libcurl's frames: they never raise.  The only
 * Lua they run is the decoder, which the sink runs under lua_pcall.
 */
#include <string.h>
#include <curl/curl.h>
#include "compat.h"
#include "transfer.h"

/* ------------------------------------------------------------ callbacks */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
    cz_transfer *t = (cz_transfer *)userdata;
    size_t n = size * nmemb;
    if (!t->body_begun) {
        long status = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        cz_sink_set_status(t->sink, status);
        t->body_begun = 1;
    }
    return cz_sink_feed(t->L, t->sink, t->dec_idx, ptr, n) ? n : 0;
}

/* Keep the header section of the final response: a new status line
 * (after a 1xx, or a followed redirect) starts a new one. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata) {
    cz_transfer *t = (cz_transfer *)userdata;
    cz_buf *b = t->hdrs;
    size_t n = size * nmemb;
    t->started = 1;
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        b->len = 0;
        t->headers_done = 0;
    } else if (t->headers_done) {
        return n; /* trailers of a chunked body: not headers of the response */
    }
    if (n <= 2 && (ptr[0] == '\r' || ptr[0] == '\n')) t->headers_done = 1;
    if (n > CZ_HEADERS_MAX - b->len || !cz_buf_add(b, ptr, n)) {
        t->headers_too_large = 1;
        return 0;
    }
    return n;
}

CURLcode cz_transfer_bind(cz_transfer *t, CURL *easy) {
    CURLcode rc;
    t->easy = easy;
    if ((rc = curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(easy, CURLOPT_WRITEDATA, t)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(easy, CURLOPT_HEADERDATA, t)) != CURLE_OK) return rc;
    return curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->errbuf);
}

void cz_transfer_reset(cz_transfer *t, lua_State *L, cz_buf *hdrs, cz_sink *sink, int dec_idx) {
    t->L = L;
    t->hdrs = hdrs;
    t->sink = sink;
    t->dec_idx = dec_idx;
    t->started = t->body_begun = t->headers_too_large = t->headers_done = 0;
    t->errbuf[0] = '\0';
    hdrs->len = 0;
    cz_sink_begin(L, sink, dec_idx, 0, NULL);
}

/* ---------------------------------------------------------------- errors */

/* The kind for a failed transfer: cz_curl_kind's, but a write error that
 * neither callback caused is curl's content decoder refusing the body. */
static const char *failure_kind(cz_transfer *t, CURLcode rc) {
    if (rc == CURLE_WRITE_ERROR && !t->headers_too_large) return "decode";
    return cz_curl_kind(rc);
}

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
    case CURLE_BAD_CONTENT_ENCODING:
        return "decode";
    default:
        return "network";
    }
}

void cz_setopt_check(lua_State *L, CURLcode rc, const char *what) {
    if (rc != CURLE_OK) luaL_error(L, "cozmox: cannot set %s: %s", what, curl_easy_strerror(rc));
}

/* What went wrong, in words that say what happened (curl's own text for
 * the rest). */
static void failure_message(cz_transfer *t, CURLcode rc, char *out, size_t size) {
    if (t->headers_too_large) {
        snprintf(out, size, "response header section larger than %d bytes", CZ_HEADERS_MAX);
    } else if (rc == CURLE_OUT_OF_MEMORY && t->started && !t->body_begun) {
        /* curl refuses a status or header line over 100 KB as "out of memory" */
        snprintf(out, size, "response header line too long (over 100 KB)");
    } else if (rc == CURLE_BAD_CONTENT_ENCODING || (rc == CURLE_WRITE_ERROR && !t->headers_too_large)) {
        /* neither callback refused the bytes: curl's gzip/deflate decoder did */
        snprintf(out, size, "invalid compressed body (corrupt, cut short, or data after its end)");
    } else {
        snprintf(out, size, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    }
    out[strcspn(out, "\r\n")] = '\0';
}

/* ------------------------------------------------------------ headers */

/* Call fn(name, nlen, value, vlen, ud) for each header line of hdrs. */
static void each_header(const cz_buf *hdrs, void (*fn)(const char *, size_t, const char *, size_t, void *),
                        void *ud) {
    const char *p, *end;
    if (hdrs->len == 0) return;
    p = hdrs->data;
    end = p + hdrs->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end, *colon, *v, *ve;
        if (line_end > p && line_end[-1] == '\r') line_end--;
        colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon != NULL && colon > p && !(line_end - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
            v = colon + 1;
            while (v < line_end && (*v == ' ' || *v == '\t')) v++;
            ve = line_end;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            fn(p, (size_t)(colon - p), v, (size_t)(ve - v), ud);
        }
        p = eol ? eol + 1 : end;
    }
}

struct header_fill {
    lua_State *L;
    int repeats;      /* some name came more than once */
};

/* Stack: [-1] headers table.  The first value of a name is stored as a
 * string; a repeat turns it into an array of parts, joined once at the
 * end (linear in the section's size, however many repeats). */
static void add_header(const char *n, size_t nlen, const char *v, size_t vlen, void *ud) {
    struct header_fill *f = (struct header_fill *)ud;
    lua_State *L = f->L;
    char name[256];
    size_t i;
    if (!lua_checkstack(L, 4)) return;
    if (nlen <= sizeof name) {
        for (i = 0; i < nlen; i++) name[i] = (char)((n[i] >= 'A' && n[i] <= 'Z') ? n[i] + 32 : n[i]);
        lua_pushlstring(L, name, nlen);
    } else { /* a long name: lower-cased through a buffer on the stack */
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (i = 0; i < nlen; i++) luaL_addchar(&b, (char)((n[i] >= 'A' && n[i] <= 'Z') ? n[i] + 32 : n[i]));
        luaL_pushresult(&b);
    }
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    switch (lua_type(L, -1)) {
    case LUA_TNIL:
        lua_pop(L, 1);
        lua_pushlstring(L, v, vlen);
        lua_rawset(L, -3);
        break;
    case LUA_TSTRING: /* second value: { first, second } */
        f->repeats = 1;
        lua_createtable(L, 4, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
        lua_pushlstring(L, v, vlen);
        lua_rawseti(L, -2, 2);
        lua_rawset(L, -3);
        break;
    default:
        lua_pushlstring(L, v, vlen);
        lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
        lua_pop(L, 2);
    }
}

/* Stack: [-1] headers table; parts arrays become "a, b, c". */
static void join_repeats(lua_State *L) {
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -1) == LUA_TTABLE) {
            int i, parts, n = (int)lua_rawlen(L, -1);
            luaL_Buffer b;
            lua_pushvalue(L, -2); /* key, parts, key */
            lua_insert(L, -2);    /* key, key, parts */
            parts = lua_gettop(L);
            luaL_buffinit(L, &b);
            for (i = 1; i <= n; i++) {
                if (i > 1) luaL_addlstring(&b, ", ", 2);
                lua_rawgeti(L, parts, i);
                luaL_addvalue(&b);
            }
            luaL_pushresult(&b);
            lua_remove(L, parts);
            lua_rawset(L, t); /* an existing key: allowed during lua_next */
        } else {
            lua_pop(L, 1);
        }
    }
}

/* The table is made with room for every line of the section (a bound on
 * its names: no rehash while it fills); only a section with a repeated
 * name is walked again to join the repeats. */
static void push_headers(lua_State *L, const cz_buf *hdrs) {
    struct header_fill f;
    int lines = 0;
    if (hdrs->len > 0) {
        const char *p = hdrs->data, *end = p + hdrs->len;
        while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            lines++;
            p++;
        }
    }
    f.L = L;
    f.repeats = 0;
    lua_createtable(L, 0, lines > 64 ? 64 : lines);
    each_header(hdrs, add_header, &f);
    if (f.repeats) join_repeats(L);
}

/* ------------------------------------------------------------ record */

static void set_timing(lua_State *L, CURL *e, CURLINFO info, const char *name) {
    curl_off_t us = 0;
    if (curl_easy_getinfo(e, info, &us) != CURLE_OK) us = 0;
    lua_pushnumber(L, (lua_Number)us / 1e6);
    lua_setfield(L, -2, name);
}

/* Stack: [rec_idx] record with headers and bytes set.  Pushes meta. */
static void push_meta(lua_State *L, CURL *e, int rec_idx) {
    long status = 0, version = 0, redirects = 0;
    char *ip = NULL;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &redirects);
    curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, version == CURL_HTTP_VERSION_2_0 ? "2" : version == CURL_HTTP_VERSION_1_0 ? "1.0"
                     : version == CURL_HTTP_VERSION_1_1 ? "1.1" : version == 0 ? "" : "3");
    lua_setfield(L, -2, "http_version");
    lua_pushinteger(L, redirects);
    lua_setfield(L, -2, "redirects");
    lua_getfield(L, rec_idx, "bytes");
    lua_setfield(L, -2, "bytes");
    lua_pushstring(L, ip ? ip : "");
    lua_setfield(L, -2, "primary_ip");
    lua_getfield(L, rec_idx, "headers");
    lua_setfield(L, -2, "headers");
    lua_createtable(L, 0, 5);
    set_timing(L, e, CURLINFO_NAMELOOKUP_TIME_T, "namelookup");
    set_timing(L, e, CURLINFO_CONNECT_TIME_T, "connect");
    set_timing(L, e, CURLINFO_APPCONNECT_TIME_T, "tls");
    set_timing(L, e, CURLINFO_STARTTRANSFER_TIME_T, "first_byte");
    set_timing(L, e, CURLINFO_TOTAL_TIME_T, "total");
    lua_setfield(L, -2, "timings");
}

void cz_transfer_record(lua_State *L, cz_transfer *t, CURLcode rc, int want_meta) {
    int rec;
    luaL_checkstack(L, 12, "cozmox: Lua stack exhausted");
    lua_createtable(L, 0, 10);
    rec = lua_gettop(L);
    if (!t->started) {
        /* a status line curl refused before any header callback */
        curl_off_t first = 0;
        if (curl_easy_getinfo(t->easy, CURLINFO_STARTTRANSFER_TIME_T, &first) == CURLE_OK && first > 0)
            t->started = 1;
    }
    if (t->started) {
        long status = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status > 0) {
            lua_pushinteger(L, status);
            lua_setfield(L, rec, "status");
            cz_sink_set_status(t->sink, status);
        }
    }
    /* a body the sink stopped is the sink's verdict, not curl's failure */
    lua_pushinteger(L, cz_sink_stopped(t->sink) ? 0 : (lua_Integer)rc);
    lua_setfield(L, rec, "code");
    lua_pushboolean(L, t->started);
    lua_setfield(L, rec, "started");
    if (rc != CURLE_OK && !cz_sink_stopped(t->sink)) {
        char msg[CURL_ERROR_SIZE + 64];
        failure_message(t, rc, msg, sizeof msg);
        lua_pushstring(L, failure_kind(t, rc));
        lua_setfield(L, rec, "kind");
        lua_pushstring(L, msg);
        lua_setfield(L, rec, "message");
        cz_sink_finish(L, t->sink, t->dec_idx, rec, 1);
    } else {
        cz_sink_finish(L, t->sink, t->dec_idx, rec, 0);
    }
    if (t->started) {
        push_headers(L, t->hdrs);
        lua_setfield(L, rec, "headers");
        if (want_meta) {
            push_meta(L, t->easy, rec);
            lua_setfield(L, rec, "meta");
        }
    }
}

/* ------------------------------------------------------------ protected */

struct record_call {
    cz_transfer *t;
    CURLcode rc;
    int want_meta;
};

/* Stack: [1] light userdata record_call, [2] the sink's decoder. */
static int record_protected(lua_State *L) {
    struct record_call *c = (struct record_call *)lua_touserdata(L, 1);
    c->t->dec_idx = 2;
    cz_transfer_record(L, c->t, c->rc, c->want_meta);
    return 1;
}

void cz_transfer_push_recorder(lua_State *L) {
    lua_pushcfunction(L, record_protected);
}

int cz_transfer_record_pcall(lua_State *L, int fn_idx, cz_transfer *t, CURLcode rc, int want_meta) {
    struct record_call c;
    int dec_idx = t->dec_idx, status;
    c.t = t, c.rc = rc, c.want_meta = want_meta;
    lua_pushvalue(L, fn_idx);
    lua_pushlightuserdata(L, &c);
    lua_pushvalue(L, dec_idx);
    status = lua_pcall(L, 2, 1, 0);
    t->dec_idx = dec_idx;
    return status;
}
