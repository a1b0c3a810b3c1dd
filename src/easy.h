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

/* A request's own header lines, in front of a fixed list they borrow. */
typedef struct cz_req_headers {
    struct curl_slist *list;
    struct curl_slist *tail;
} cz_req_headers;

/* curl.handle(opts) -> handle (see easy.c). */
int cz_handle_new(lua_State *L);
void cz_handle_register(lua_State *L);
cz_handle *cz_check_handle(lua_State *L, int idx);
CURL *cz_handle_easy(cz_handle *h);
struct curl_slist *cz_handle_headers(cz_handle *h);   /* fixed: Accept, Authorization */
struct curl_slist *cz_handle_anonymous(cz_handle *h); /* fixed: Accept (no_auth) */
int *cz_handle_busy(cz_handle *h);

/* Method, URL, body, header lines and time limits of the request table
 * at req_idx set on e (see easy.c); raises for a malformed request. */
void cz_request_set(lua_State *L, CURL *e, int req_idx, struct curl_slist *fixed_auth,
                    struct curl_slist *anonymous, cz_req_headers *rh);
void cz_req_headers_free(cz_req_headers *rh);

/* Attach the Lua state's curl share handle (DNS, TLS sessions,
 * connections) to e and return it (NULL: none) (curl.c). */
CURLSH *cz_share_attach(lua_State *L, CURL *e);
/* Whether each transfer must run on a fresh duplicate (easy.c). */
int cz_handle_fresh(cz_handle *h);
CURLSH *cz_handle_share(cz_handle *h);

/* handle:perform_many(reqs, concurrency, want_meta) (multi.c). */
int cz_perform_many(lua_State *L);
void cz_multi_register(lua_State *L);

/* curl.driver(handle): the loop-driven multi handle (driver.c). */
int cz_driver_new(lua_State *L);
void cz_driver_register(lua_State *L);

#endif
