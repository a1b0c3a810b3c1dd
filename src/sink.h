/*
 * sink.h -- the response sink: the one place where the body rules live.
 *
 * Every transport pours the bytes of a response body into a sink: curl's
 * write callback in C, the cosocket and custom transports through the Lua
 * methods.  The sink
 *   - undoes gzip/deflate content coding when the transport did not
 *     (curl decodes itself; cosockets hand the raw body and its coding),
 *   - counts decoded bytes against max_response_bytes and stops a body
 *     (a gzip bomb included) as soon as the limit is crossed,
 *   - feeds the decoded bytes to its push decoder (in C, protected: no
 *     Lua error unwinds through the caller's frames),
 *   - stops a 2xx body at its first decode error, and reads an error page
 *     only until its snippet is full,
 *   - keeps the first CZ_SNIPPET_MAX decoded bytes as the snippet,
 *   - and at the end writes its verdict into the result record: value, or
 *     kind + message + snippet.  Whatever a failed decode had built is
 *     dropped then, and buffers grown past a sane size are freed, so no
 *     call keeps memory after it returns.
 *
 * Lua:
 *   sink = core.sink(max_response_bytes, max_depth, big_integers)
 *   sink:begin(status [, content_encoding])
 *   go = sink:feed(chunk)        false: stop reading (the sink's verdict is final)
 *   rec = sink:finish(rec [, cut])   cut: the transport lost the body
 *   n = sink:received()          decoded body bytes so far
 */
#ifndef COZMOX_SINK_H
#define COZMOX_SINK_H

#include <stdint.h>
#include <stddef.h>
#include <lua.h>

#define CZ_SINK_MT "cozmox.sink"
#define CZ_SNIPPET_MAX 512

typedef struct cz_sink cz_sink;

/* Push a new sink (uservalue: its decoder) on L. */
cz_sink *cz_sink_push(lua_State *L, double max_bytes, int max_depth, int big_strings);
/* Push a new sink with the limits of the one at model_idx. */
cz_sink *cz_sink_push_copy(lua_State *L, int model_idx);
cz_sink *cz_sink_check(lua_State *L, int idx);
/* Push the sink's decoder; its stack index is what feed/finish take. */
void cz_sink_push_decoder(lua_State *L, int sink_idx);

/* Start a response body: its status and content coding (NULL or
 * "identity": none; "gzip", "x-gzip", "deflate": undone here; any other
 * stops the body at once, a decode error).  Rewinds the decoder (needs 2
 * free stack slots). */
void cz_sink_begin(lua_State *L, cz_sink *s, int dec_idx, long status, const char *coding);
/* The final status, once known (curl tells it with the first byte). */
void cz_sink_set_status(cz_sink *s, long status);
/* Bytes of the body as received.  Returns 1 to go on, 0 when the body
 * must not be read further.  Never raises. */
int cz_sink_feed(lua_State *L, cz_sink *s, int dec_idx, const char *p, size_t n);
/* Did the sink itself stop the body (limit, 2xx decode error, full
 * snippet)?  Then a transport's write error is the sink's doing. */
int cz_sink_stopped(const cz_sink *s);
/* Set value, or kind/message/snippet, in the table at rec_idx and drop
 * everything the body built.  cut: the transport lost the rest of the
 * body (its own failure goes in the record; the sink's verdict still wins
 * when the sink stopped the body).  Needs 4 free stack slots; raises
 * only for memory. */
void cz_sink_finish(lua_State *L, cz_sink *s, int dec_idx, int rec_idx, int cut);
/* Decoded body bytes of the current response. */
double cz_sink_received(const cz_sink *s);
const char *cz_sink_message(const cz_sink *s);

void cz_sink_register(lua_State *L);
/* core.sink (registered by core.c). */
int cz_sink_new(lua_State *L);

#endif
