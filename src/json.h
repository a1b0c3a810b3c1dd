/*
 * json.h -- the JSON codec's entry points.
 *
 * Values map as: object <-> plain table, array <-> table with the
 * registry metatable CZ_ARRAY_MT, null <-> light userdata NULL (the same
 * value as cjson.null), integers exact on 5.3+, floats shortest
 * round-trip, strings UTF-8.
 */
#ifndef COZMOX_JSON_H
#define COZMOX_JSON_H

#include <stddef.h>
#include <lua.h>

/* luaL_newmetatable name of the array metatable (exported as array_mt). */
#define CZ_ARRAY_MT "cozmox.array"
/* luaL_newmetatable name of decoder userdata. */
#define CZ_DECODER_MT "cozmox.decoder"
#define CZ_DEFAULT_MAX_DEPTH 1000

/* --- encoder (jencode.c) ---------------------------------------------- */
/* encode(value) -> string; raises on NaN/inf, cycles, bad keys, bad UTF-8. */
int cz_json_encode(lua_State *L);

/* --- decoder (jdecode.c) ---------------------------------------------- */
typedef struct cz_decoder cz_decoder;

/* decode(str [, opts]) -> value; raises "... at byte N". */
int cz_json_decode(lua_State *L);
/* decoder([opts]) -> d, with d:feed(chunk) and d:finish(). */
int cz_json_decoder(lua_State *L);

/* For the transport: a decoder userdata created and pushed on L. */
cz_decoder *cz_decoder_push(lua_State *L, int max_depth);
/* Feed bytes from C without making a Lua string.  Runs the parse
 * protected: never raises.  Returns 1 on success, 0 on error (message
 * then available from cz_decoder_error).  dec_idx: stack index of the
 * decoder userdata. */
int cz_decoder_feed_raw(lua_State *L, int dec_idx, const char *p, size_t n);
/* End of input: pushes the value and returns 1, or returns 0 on error
 * (nothing pushed).  Never raises. */
int cz_decoder_finish_raw(lua_State *L, int dec_idx);
const char *cz_decoder_error(cz_decoder *d);
/* Was the last failure Lua running out of memory? */
int cz_decoder_oom(const cz_decoder *d);
/* After a document: drop what a failed decode built, free big buffers. */
void cz_decoder_release(lua_State *L, int idx);
/* Integer literals beyond +-2^53 become strings (big_integers = "string"). */
void cz_decoder_set_big_strings(cz_decoder *d, int on);
/* Give dst the limits and number mode of src. */
void cz_decoder_copy_settings(cz_decoder *dst, const cz_decoder *src);
/* Read { max_depth =, big_integers = "number"|"string" } at idx (may be
 * nil); raises bad argument.  Returns max_depth. */
int cz_decoder_opts(lua_State *L, int idx, int *big_strings);
/* Ready the decoder at idx for a new document, keeping its buffers.
 * Raises nothing; needs 2 free stack slots. */
void cz_decoder_rewind(lua_State *L, int idx);

void cz_json_register(lua_State *L);  /* metatables */
/* Add encode, decode, decoder, null and array_mt to the table on top
 * (after cz_json_register). */
void cz_json_export(lua_State *L);

#endif
