/*
 * transfer.h -- one curl transfer and the result record it delivers;
 * shared by the easy handle (easy.c), curl multi (multi.c) and the
 * loop-driven transport.
 *
 * The result record (see lua/cozmox/transport.lua for the contract) is a
 * table the C code fills for curl:
 *   status    HTTP status of the final response, or absent
 *   value     the decoded body (absent for an empty one or a failure)
 *   kind, message   a failure (absent on success): network, timeout, tls,
 *                   config, decode, too_large, memory
 *   code      curl's CURLcode (0 on success)
 *   started   true once any byte of a response arrived
 *   snippet   first bytes of a body that did not decode
 *   headers   { [lower-case name] = value } of the final response
 *   bytes     decoded body bytes
 *   meta      (when asked) status, http_version, headers, timings, ...
 */
#ifndef COZMOX_TRANSFER_H
#define COZMOX_TRANSFER_H

#include <curl/curl.h>
#include <lua.h>
#include "buffer.h"
#include "sink.h"

/* A response header section larger than this ends the transfer (curl's
 * own limit is 100 KB per header line). */
#define CZ_HEADERS_MAX (256 * 1024)

typedef struct cz_transfer {
    lua_State *L;
    CURL *easy;
    cz_buf *hdrs;          /* header section of the final response */
    cz_sink *sink;
    int dec_idx;           /* stack index of the sink's decoder */
    int started;           /* some response byte (header) arrived */
    int body_begun;        /* the sink knows the final status */
    int headers_too_large;
    int headers_done;      /* the blank line after the headers came */
    char errbuf[CURL_ERROR_SIZE];
} cz_transfer;

/* Point easy's callbacks and error buffer at t. Returns a CURLcode. */
CURLcode cz_transfer_bind(cz_transfer *t, CURL *easy);
/* Ready t for a new transfer: the sink is rewound (2 stack slots). */
void cz_transfer_reset(cz_transfer *t, lua_State *L, cz_buf *hdrs, cz_sink *sink, int dec_idx);
/* Push the result record of a finished transfer (rc: its CURLcode). */
void cz_transfer_record(lua_State *L, cz_transfer *t, CURLcode rc, int want_meta);

/* The record, built protected: the busy flag of whoever owns the
 * transfer must be cleared whatever happens.  cz_transfer_push_recorder
 * pushes the function (before the transfer: on 5.1 that allocates);
 * cz_transfer_record_pcall calls the one at fn_idx and returns lua_pcall's
 * status, leaving the record or the error message on top.  Needs 3 free
 * stack slots. */
void cz_transfer_push_recorder(lua_State *L);
int cz_transfer_record_pcall(lua_State *L, int fn_idx, cz_transfer *t, CURLcode rc, int want_meta);

/* The kind of failure a CURLcode means. */
const char *cz_curl_kind(CURLcode rc);
/* Set an option or raise "cozmox: cannot set <what>: <curl's reason>". */
void cz_setopt_check(lua_State *L, CURLcode rc, const char *what);
#define CZ_SETOPT(L, e, opt, val) cz_setopt_check((L), curl_easy_setopt((e), (opt), (val)), #opt)

#endif
