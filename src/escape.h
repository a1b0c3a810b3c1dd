/* escape.h -- URL escaping. */
#ifndef COZMOX_ESCAPE_H
#define COZMOX_ESCAPE_H

#include <lua.h>

/* escape_segment(str) -> str percent-encoded as one URL path segment. */
int cz_escape_segment(lua_State *L);

#endif
