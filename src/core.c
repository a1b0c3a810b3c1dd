/*
 * core.c -- the module entry point: require("cozmox.core").
 * Registration only; each concern lives in its own file.
 */
#include <curl/curl.h>
#include "compat.h"
#include "buffer.h"
#include "json.h"
#include "transport.h"
#include "clock.h"

static const luaL_Reg core_funcs[] = {
    {"new_handle", cz_transport_new},
    {"escape_segment", cz_escape_segment},
    {"sleep", cz_clock_sleep},
    {"now", cz_clock_now},
    {NULL, NULL}};

int luaopen_cozmox_core(lua_State *L);

int luaopen_cozmox_core(lua_State *L) {
    cz_buf_register(L);
    cz_json_register(L);
    if (!cz_transport_register(L)) return luaL_error(L, "cozmox: curl_global_init failed");
    cz_multi_register(L);

    cz_newlib(L, core_funcs);
    cz_json_export(L);
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "curl_version");
    return 1;
}
