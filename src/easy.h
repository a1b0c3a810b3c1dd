/*
 * easy.h -- the curl module's handle (easy.c), its share handle (curl.c)
 * and curl multi (multi.c).
 */
#ifndef COZMOX_EASY_H
#define COZMOX_EASY_H

#include <curl/curl.h>
#include <lua.h>

#define CZ_HANDLE_MT "cozmox.curl.handle"

typedef struct cz_handle cz_handle;

/* curl.handle(opts) -> handle (see easy.c). */
int cz_handle_new(lua_State *L);
void cz_handle_register(lua_State *L);
cz_handle *cz_check_handle(lua_State *L, int idx);
CURL *cz_handle_easy(cz_handle *h);
struct curl_slist *cz_handle_headers(cz_handle *h);
int *cz_handle_busy(cz_handle *h);

/* Attach the Lua state's curl share handle (DNS, TLS sessions,
 * connections) to e and return it (NULL: none) (curl.c). */
CURLSH *cz_share_attach(lua_State *L, CURL *e);
/* Whether each transfer must run on a fresh duplicate (easy.c). */
int cz_handle_fresh(cz_handle *h);
CURLSH *cz_handle_share(cz_handle *h);

/* handle:perform_many(reqs, concurrency, want_meta) (multi.c). */
int cz_perform_many(lua_State *L);
void cz_multi_register(lua_State *L);

#endif
