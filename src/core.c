/*
 * core.c -- the module entry point: require("cozmox.core").
 * Registration only; each concern lives in its own file.  No libcurl:
 * the JSON codec, the response sink, URL escaping and the clock.  The
 * curl transport is the separate module cozmox.curl (curl.c).
 */
#include "compat.h"
#include "buffer.h"
#include "json.h"
#include "sink.h"
#include "escape.h"
#include "clock.h"

static const luaL_Reg core_funcs[] = {
    {"sink", cz_sink_new},
    {"escape_segment", cz_escape_segment},
    {"sleep", cz_clock_sleep},
    {"now", cz_clock_now},
    {NULL, NULL}};

CZ_EXPORT int luaopen_cozmox_core(lua_State *L);

int luaopen_cozmox_core(lua_State *L) {
    cz_buf_register(L);
    cz_json_register(L);
    cz_sink_register(L);
    cz_newlib(L, core_funcs);
    cz_json_export(L);
    return 1;
}
