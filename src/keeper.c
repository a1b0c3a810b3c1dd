/* keeper.c -- kept memory blocks (keeper.h). */
#include <stdlib.h>
#include <stdint.h>
#include "compat.h"
#include "keeper.h"

#define KEEPER_MT "cozmox.keeper"

/* A block: its links, then the caller's bytes (16-byte aligned). */
typedef struct block {
    struct block *prev, *next;
} block;

struct cz_keeper {
    block head; /* circular list of the state's blocks */
};

static void link_block(cz_keeper *k, block *b) {
    b->next = k->head.next;
    b->prev = &k->head;
    k->head.next->prev = b;
    k->head.next = b;
}

static void unlink_block(block *b) {
    b->prev->next = b->next;
    b->next->prev = b->prev;
}

void *cz_kalloc(cz_keeper *k, void *old, size_t n) {
    block *b;
    if (k == NULL) {
        if (n == 0) {
            free(old);
            return NULL;
        }
        return realloc(old, n);
    }
    if (n == 0) {
        cz_kfree(k, old);
        return NULL;
    }
    if (n > SIZE_MAX - sizeof(block)) return NULL;
    if (old == NULL) {
        b = (block *)malloc(sizeof(block) + n);
        if (b == NULL) return NULL;
    } else {
        block *ob = (block *)old - 1, *nb;
        unlink_block(ob);
        nb = (block *)realloc(ob, sizeof(block) + n);
        if (nb == NULL) {
            link_block(k, ob);
            return NULL;
        }
        b = nb;
    }
    link_block(k, b);
    return b + 1;
}

void cz_kfree(cz_keeper *k, void *p) {
    if (p == NULL) return;
    if (k == NULL) {
        free(p);
        return;
    }
    unlink_block((block *)p - 1);
    free((block *)p - 1);
}

static int keeper_gc(lua_State *L) {
    cz_keeper *k = (cz_keeper *)luaL_checkudata(L, 1, KEEPER_MT);
    while (k->head.next != &k->head) {
        block *b = k->head.next;
        unlink_block(b);
        free(b);
    }
    return 0;
}

void cz_keeper_register(lua_State *L) {
    cz_keeper *k;
    lua_getfield(L, LUA_REGISTRYINDEX, KEEPER_MT ".instance");
    if (!lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    cz_class(L, KEEPER_MT, NULL, keeper_gc, NULL);
    k = (cz_keeper *)cz_newuserdata(L, sizeof *k);
    k->head.next = k->head.prev = &k->head;
    cz_setmetatable(L, KEEPER_MT);
    lua_setfield(L, LUA_REGISTRYINDEX, KEEPER_MT ".instance");
}

cz_keeper *cz_keeper_of(lua_State *L) {
    cz_keeper *k;
    lua_getfield(L, LUA_REGISTRYINDEX, KEEPER_MT ".instance");
    k = (cz_keeper *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return k;
}
