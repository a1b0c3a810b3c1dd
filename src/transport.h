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

#endif
