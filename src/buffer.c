/* buffer.c -- growable byte buffer (see buffer.h). */
#include <stdlib.h>
#include <stdint.h>
#include "buffer.h"
#include "compat.h"
#include "keeper.h"

#define BUF_MT "cozmox.buffer"

int cz_buf_grow(cz_buf *b, size_t extra) {
    size_t need, cap;
    char *p;
    if (extra > SIZE_MAX - b->len) return 0;
    need = b->len + extra;
    if (need <= b->cap) return 1;
    cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    p = (char *)cz_kalloc(b->keeper, b->data, cap);
    if (p == NULL) return 0;
    b->data = p;
    b->cap = cap;
    return 1;
}

void cz_buf_free(cz_buf *b) {
    cz_kfree(b->keeper, b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int buf_gc(lua_State *L) {
    cz_buf_free((cz_buf *)luaL_checkudata(L, 1, BUF_MT));
    return 0;
}

cz_buf *cz_buf_push(lua_State *L) {
    cz_buf *b = (cz_buf *)cz_newuserdata(L, sizeof *b);
    b->data = NULL;
    b->len = b->cap = 0;
    b->keeper = cz_keeper_of(L);
    cz_setmetatable(L, BUF_MT);
    return b;
}

void cz_buf_register(lua_State *L) {
    if (luaL_newmetatable(L, BUF_MT)) {
        lua_pushcfunction(L, buf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}
