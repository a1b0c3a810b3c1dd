/*
 * curl.c -- the curl transport's module entry: require("cozmox.curl").
 *
 * Loaded on the first request that goes through curl, never by
 * require("cozmox") itself: a process (or an nginx worker on cosockets)
 * that never needs curl never loads libcurl and the libraries it pulls in.
 * Registration only; the handle is easy.c, transfers transfer.c, curl
 * multi multi.c.  It carries its own copy of the codec and the sink (the
 * same sources as cozmox.core, private to this .so).
 */
#include <curl/curl.h>
#include "compat.h"
#include "json.h"
#include "sink.h"
#include "easy.h"

#define SHARE_MT "cozmox.curl.share"

/* The per-Lua-state curl share handle: DNS cache, TLS sessions and the
 * connection pool are shared by every client of the state.  One Lua state
 * runs on one thread at a time, so no lock callbacks are needed. */
typedef struct cz_share {
    CURLSH *sh;
} cz_share;

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
    cz_class(L, SHARE_MT, NULL, share_gc, NULL);
    luaL_getmetatable(L, SHARE_MT);
    s = (cz_share *)cz_newuserdata(L, sizeof *s);
    s->sh = NULL;
    lua_pushvalue(L, -2);
    lua_setmetatable(L, -2);
    /* Without a share handle (or a part of it) clients still work, each
     * with its own caches: a refusal only costs sharing. */
    s->sh = curl_share_init();
    if (s->sh != NULL && (curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
                          curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)) {
        curl_share_cleanup(s->sh);
        s->sh = NULL;
    }
#if LIBCURL_VERSION_NUM >= 0x073900
    if (s->sh != NULL) (void)curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT); /* optional */
#endif
    lua_setfield(L, -2, "instance");
    lua_pop(L, 1);
}

CURLSH *cz_share_attach(lua_State *L, CURL *e) {
    cz_share *share;
    luaL_getmetatable(L, SHARE_MT);
    lua_getfield(L, -1, "instance");
    share = (cz_share *)lua_touserdata(L, -1);
    lua_pop(L, 2);
    if (share == NULL || share->sh == NULL) return NULL;
    if (curl_easy_setopt(e, CURLOPT_SHARE, share->sh) != CURLE_OK)
        luaL_error(L, "cozmox: cannot attach the curl share handle");
    return share->sh;
}

static const luaL_Reg curl_funcs[] = {
    {"handle", cz_handle_new},
    {NULL, NULL}};

CZ_EXPORT int luaopen_cozmox_curl(lua_State *L);

int luaopen_cozmox_curl(lua_State *L) {
    /* curl_global_init is reference counted by libcurl itself and is
     * thread-safe in this libcurl (curl_version_info reports
     * CURL_VERSION_THREADSAFE); it is the only global state. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return luaL_error(L, "cozmox: curl_global_init failed");
    cz_json_register(L);
    cz_sink_register(L);
    luaL_getmetatable(L, SHARE_MT);
    if (lua_isnil(L, -1)) share_create(L);
    lua_pop(L, 1);
    cz_handle_register(L);
    cz_multi_register(L);
    cz_newlib(L, curl_funcs);
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "version");
    return 1;
}
