/*
 * compat.h -- the one place where Lua 5.1 / LuaJIT / 5.2 / 5.3 / 5.4
 * differences live.  Everything else in src/ is written against the
 * 5.4 C API plus the cz_* helpers declared here.
 */
#ifndef COZMOX_COMPAT_H
#define COZMOX_COMPAT_H

#include <lua.h>
#include <lauxlib.h>
#include <stddef.h>

#if !defined(LUA_VERSION_NUM) || LUA_VERSION_NUM < 502
/* Lua 5.1 and LuaJIT ---------------------------------------------------- */
#define CZ_HAS_INTEGERS 0
#define lua_rawlen(L, i) lua_objlen((L), (i))

static inline void cz_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
    luaL_checkstack(L, nup + 1, "too many upvalues");
    for (; l->name != NULL; l++) {
        int i;
        for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}
#define cz_newlib(L, l) (lua_newtable(L), cz_setfuncs((L), (l), 0))

static inline void *cz_newuserdata(lua_State *L, size_t sz) {
    return lua_newuserdata(L, sz);
}
static inline void *cz_testudata(lua_State *L, int idx, const char *tname) {
    void *p = lua_touserdata(L, idx);
    if (p != NULL && lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, tname);
        if (!lua_rawequal(L, -1, -2)) p = NULL;
        lua_pop(L, 2);
        return p;
    }
    return NULL;
}
static inline void cz_setmetatable(lua_State *L, const char *tname) {
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
}
#else
/* Lua 5.2 / 5.3 / 5.4 ---------------------------------------------------- */
#if LUA_VERSION_NUM >= 503
#define CZ_HAS_INTEGERS 1
#else
#define CZ_HAS_INTEGERS 0
#endif
#define cz_setfuncs(L, l, nup) luaL_setfuncs((L), (l), (nup))
#define cz_newlib(L, l) luaL_newlib((L), (l))
#define cz_testudata(L, i, t) luaL_testudata((L), (i), (t))
#define cz_setmetatable(L, t) luaL_setmetatable((L), (t))
#if LUA_VERSION_NUM >= 504
static inline void *cz_newuserdata(lua_State *L, size_t sz) {
    return lua_newuserdatauv(L, sz, 1);
}
#else
static inline void *cz_newuserdata(lua_State *L, size_t sz) {
    return lua_newuserdata(L, sz);
}
#endif
#endif

/* One user value per userdata, of any type.  5.3+ has that; 5.1's
 * environment and 5.2's user value must be tables, so there the value
 * lives at index 1 of a private table. */
#if !defined(LUA_VERSION_NUM) || LUA_VERSION_NUM < 503
#if !defined(LUA_VERSION_NUM) || LUA_VERSION_NUM < 502
#define cz_rawsetuv_(L, i) lua_setfenv((L), (i))
#define cz_rawgetuv_(L, i) lua_getfenv((L), (i))
#else
#define cz_rawsetuv_(L, i) lua_setuservalue((L), (i))
#define cz_rawgetuv_(L, i) lua_getuservalue((L), (i))
#endif
static inline void cz_setuservalue(lua_State *L, int idx) {
    if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
    lua_createtable(L, 1, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
    cz_rawsetuv_(L, idx);
}
static inline void cz_getuservalue(lua_State *L, int idx) {
    cz_rawgetuv_(L, idx);
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
}
#else
static inline void cz_setuservalue(lua_State *L, int idx) { lua_setuservalue(L, idx); }
static inline void cz_getuservalue(lua_State *L, int idx) { (void)lua_getuservalue(L, idx); }
#endif

#if LUA_VERSION_NUM >= 504
#define CZ_HAS_CLOSE 1
#else
#define CZ_HAS_CLOSE 0
#endif

/* Push a JSON integer literal's exact value.  On runtimes without a
 * separate integer subtype the value becomes the nearest double. */
static inline void cz_pushint64(lua_State *L, long long v) {
#if CZ_HAS_INTEGERS
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
}

/* Is the number at idx an integer that should be written without a
 * fraction?  5.3+: the integer subtype.  5.1: integral doubles within
 * +-2^53 (beyond that a double is printed as a float). */
static inline int cz_isinteger(lua_State *L, int idx, long long *out) {
#if CZ_HAS_INTEGERS
    if (lua_isinteger(L, idx)) { *out = (long long)lua_tointeger(L, idx); return 1; }
    return 0;
#else
    lua_Number n = lua_tonumber(L, idx);
    if (n >= -9007199254740992.0 && n <= 9007199254740992.0 && n == (lua_Number)(long long)n) {
        *out = (long long)n;
        return 1;
    }
    return 0;
#endif
}

/* An absolute stack index (lua_absindex is 5.2+). */
static inline int cz_absindex(lua_State *L, int idx) {
    return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}

/* Register a class: metatable tname with methods as __index, __gc = gc,
 * __tostring = tostring (each may be NULL).  Once per state. */
static inline void cz_class(lua_State *L, const char *tname, const luaL_Reg *methods,
                            lua_CFunction gc, lua_CFunction tostring) {
    if (luaL_newmetatable(L, tname)) {
        if (methods != NULL) {
            lua_newtable(L);
            cz_setfuncs(L, methods, 0);
            lua_setfield(L, -2, "__index");
        }
        if (gc != NULL) {
            lua_pushcfunction(L, gc);
            lua_setfield(L, -2, "__gc");
        }
        if (tostring != NULL) {
            lua_pushcfunction(L, tostring);
            lua_setfield(L, -2, "__tostring");
        }
    }
    lua_pop(L, 1);
}

/* Symbols other C modules of this library may not see: each .so carries
 * its own copy of the shared sources; only luaopen_* is exported. */
#define CZ_EXPORT __attribute__((visibility("default")))

/* Inlining where it was measured to matter (callgrind): a cold path kept
 * out of its caller, a hot one forced into it. */
#if defined(__GNUC__)
#define CZ_NOINLINE __attribute__((noinline))
#define CZ_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define CZ_NOINLINE
#define CZ_ALWAYS_INLINE inline
#endif

/* The same key as lua-cjson's cjson.null: a light userdata holding NULL. */
#define cz_pushnull(L) lua_pushlightuserdata((L), NULL)

#endif
