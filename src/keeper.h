/*
 * keeper.h -- memory blocks a Lua state gets back even when a finalizer
 * is lost.
 *
 * Lua drops a finalizer it cannot call: when running __gc itself runs out
 * of memory (no room for the call), the object is freed without it, and
 * whatever C memory it owned would be lost for good.  So the codec and
 * the sink allocate their buffers as kept blocks: each block is linked
 * into its state's keeper (a registry userdata, created when the module
 * registers, so finalized after every object that uses it), a finalizer
 * that does run frees and unlinks its blocks, and the keeper's own __gc
 * frees whatever is still linked when the state closes.  One keeper per
 * state: no global state, nothing shared between threads.
 */
#ifndef COZMOX_KEEPER_H
#define COZMOX_KEEPER_H

#include <stddef.h>
#include <lua.h>

typedef struct cz_keeper cz_keeper;

/* The state's keeper, created (once) by cz_keeper_register. */
cz_keeper *cz_keeper_of(lua_State *L);
void cz_keeper_register(lua_State *L);

/* realloc for kept blocks: k NULL means plain realloc/free (blocks of no
 * state).  NULL on failure, old block untouched.  n == 0 frees. */
void *cz_kalloc(cz_keeper *k, void *old, size_t n);
void cz_kfree(cz_keeper *k, void *p);

#endif
