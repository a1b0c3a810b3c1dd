/*
 * transport.h -- the libcurl transport: one easy handle per client,
 * responses decoded on the fly by the push decoder.
 */
#ifndef COZMOX_TRANSPORT_H
#define COZMOX_TRANSPORT_H

#include <lua.h>

/* new_handle(opts) -> handle (see transport.c for opts and methods). */
int cz_transport_new(lua_State *L);
/* escape_segment(str) -> str percent-encoded as one URL path segment. */
int cz_escape_segment(lua_State *L);
/* Metatables and curl_global_init (once per process); 0 on failure. */
int cz_transport_register(lua_State *L);

/* --- shared by transport.c and multi.c -------------------------------- */
#include <curl/curl.h>
#include "buffer.h"

#define CZ_SNIPPET_MAX 512

/* The state of one transfer, owned by the C frame that runs it. */
typedef struct cz_transfer {
    lua_State *L;
    CURL *easy;
    cz_buf *hdrs;          /* header block of the response (not owned) */
    curl_off_t max_bytes;
    int dec_idx;           /* absolute stack index of its decoder */
    curl_off_t received;   /* body bytes after content decoding */
    const char *abort_kind;
    int decode_failed;
    int started;           /* some response byte (header) arrived */
    size_t snip_len;
    char snippet[CZ_SNIPPET_MAX];
    char message[256];
} cz_transfer;

typedef struct cz_handle cz_handle;

/* curl callbacks: WRITEDATA and HEADERDATA are the cz_transfer. */
size_t cz_on_body(char *ptr, size_t size, size_t nmemb, void *userdata);
size_t cz_on_header(char *ptr, size_t size, size_t nmemb, void *userdata);
/* Reset t for a new transfer and rewind its decoder. */
void cz_transfer_init(cz_transfer *t, lua_State *L, CURL *easy, cz_buf *hdrs,
                      curl_off_t max_bytes, int dec_idx);
/* Push the outcome values of a finished transfer; returns their count. */
int cz_transfer_outcome(lua_State *L, cz_transfer *t, CURLcode rc, const char *errbuf);
const char *cz_curl_kind(CURLcode rc);
/* Push the value of response header `name` in hdrs, or nil. */
void cz_push_header(lua_State *L, const cz_buf *hdrs, const char *name);
/* Push the metadata table of a finished transfer. */
void cz_push_meta(lua_State *L, CURL *easy, const cz_buf *hdrs);

cz_handle *cz_check_handle(lua_State *L, int idx);
CURL *cz_handle_easy(cz_handle *h);
curl_off_t cz_handle_max_bytes(cz_handle *h);
struct curl_slist *cz_handle_headers(cz_handle *h);
int *cz_handle_busy(cz_handle *h);

/* handle:perform_many(urls, concurrency, want_meta) (multi.c). */
int cz_perform_many(lua_State *L);
void cz_multi_register(lua_State *L);

#endif
