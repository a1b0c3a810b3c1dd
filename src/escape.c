/* escape.c -- percent-encoding of one URL path segment (escape.h). */
#include "compat.h"
#include "escape.h"

/* escape_segment(s): unreserved characters (RFC 3986) stay, everything
 * else becomes %XX; a segment of only dots is escaped whole, so "." and
 * ".." can never act as path navigation. */
int cz_escape_segment(lua_State *L) {
    static const char hexd[] = "0123456789ABCDEF";
    size_t n, i;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    int all_dots = n > 0;
    luaL_Buffer b;
    for (i = 0; i < n; i++)
        if (s[i] != '.') { all_dots = 0; break; }
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++) {
        unsigned c = s[i];
        if (!all_dots && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                          c == '-' || c == '.' || c == '_' || c == '~')) {
            luaL_addchar(&b, (char)c);
        } else {
            luaL_addchar(&b, '%');
            luaL_addchar(&b, hexd[c >> 4]);
            luaL_addchar(&b, hexd[c & 15]);
        }
    }
    luaL_pushresult(&b);
    return 1;
}
