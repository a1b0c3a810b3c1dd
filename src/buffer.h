/*
 * buffer.h -- a growable byte buffer.
 *
 * A cz_buf never owns itself: it is embedded in a userdata whose __gc
 * calls cz_buf_free, so a Lua error half-way through can never leak it;
 * its block is kept by the state's keeper (keeper.h) when it has one, so
 * not even a finalizer Lua could not run leaks it.
 * Growth functions return 0 on allocation failure and leave the buffer
 * unchanged; callers turn that into an error of their own.
 */
#ifndef COZMOX_BUFFER_H
#define COZMOX_BUFFER_H

#include <stddef.h>
#include <string.h>
#include <lua.h>

/* keeper: the Lua state's keeper (keeper.h), or NULL for plain malloc. */
typedef struct cz_buf {
    char *data;
    size_t len;
    size_t cap;
    struct cz_keeper *keeper;
} cz_buf;

#define CZ_BUF_INIT {NULL, 0, 0, NULL}

int cz_buf_grow(cz_buf *b, size_t extra);   /* ensure len + extra <= cap */
void cz_buf_free(cz_buf *b);

static inline int cz_buf_reserve(cz_buf *b, size_t extra) {
    return (b->cap - b->len >= extra) ? 1 : cz_buf_grow(b, extra);
}
static inline int cz_buf_add(cz_buf *b, const void *p, size_t n) {
    if (n == 0) return 1;
    if (!cz_buf_reserve(b, n)) return 0;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 1;
}
static inline int cz_buf_addc(cz_buf *b, char c) {
    if (b->len == b->cap && !cz_buf_grow(b, 1)) return 0;
    b->data[b->len++] = c;
    return 1;
}

/* A cz_buf inside a fresh userdata with a __gc metatable, pushed on L. */
cz_buf *cz_buf_push(lua_State *L);
void cz_buf_register(lua_State *L);

#endif
