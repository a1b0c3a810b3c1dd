/*
 * sink.c -- the response sink (see sink.h): content decoding, the size
 * limit, the snippet, the decoder, and the verdict in the result record.
 *
 * A sink userdata owns its zlib stream and inflate buffer (__gc ends and
 * frees them) and keeps its decoder as its uservalue, so a sink dropped
 * half-way through a body leaks nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "compat.h"
#include "json.h"
#include "keeper.h"
#include "sink.h"

#define INFLATE_OUT 65536

enum { CODING_NONE, CODING_GZIP, CODING_DEFLATE, CODING_UNKNOWN };
/* inflate state of the current body */
enum { Z_IDLE, Z_HEADER, Z_RUNNING, Z_DONE };

struct cz_sink {
    double max_bytes;
    double received;     /* decoded body bytes */
    long status;
    int coding;
    int zstate;
    int zinit;           /* z holds an inflate stream (inflateEnd needed) */
    int stopped;         /* the sink refused further bytes */
    int busy;            /* its decoder is running (Lua could re-enter) */
    int decode_failed;   /* the decoder rejected the body */
    const char *kind;    /* the sink's verdict: too_large, decode, memory */
    size_t snip_len;
    unsigned char *zout; /* inflate output, INFLATE_OUT bytes */
    cz_keeper *keeper;   /* the state's: zout and zlib's own memory are kept blocks */
    z_stream z;
    char snippet[CZ_SNIPPET_MAX];
    char message[256];
};

static int is2xx(long status) { return status >= 200 && status < 300; }

/* ------------------------------------------------------------ lifecycle */

static void zlib_end(cz_sink *s) {
    if (s->zinit) inflateEnd(&s->z);
    s->zinit = 0;
    s->zstate = Z_IDLE;
}

static int sink_gc(lua_State *L) {
    cz_sink *s = (cz_sink *)luaL_checkudata(L, 1, CZ_SINK_MT);
    zlib_end(s);
    cz_kfree(s->keeper, s->zout);
    s->zout = NULL;
    return 0;
}

cz_sink *cz_sink_push(lua_State *L, double max_bytes, int max_depth, int big_strings) {
    cz_sink *s = (cz_sink *)cz_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    s->max_bytes = max_bytes;
    s->keeper = cz_keeper_of(L);
    cz_setmetatable(L, CZ_SINK_MT);
    cz_decoder_set_big_strings(cz_decoder_push(L, max_depth), big_strings);
    cz_setuservalue(L, -2);
    return s;
}

cz_sink *cz_sink_push_copy(lua_State *L, int model_idx) {
    cz_sink *model = cz_sink_check(L, model_idx), *s;
    model_idx = cz_absindex(L, model_idx);
    s = cz_sink_push(L, model->max_bytes, CZ_DEFAULT_MAX_DEPTH, 0);
    cz_getuservalue(L, -1);
    cz_getuservalue(L, model_idx);
    cz_decoder_copy_settings((cz_decoder *)lua_touserdata(L, -2), (cz_decoder *)lua_touserdata(L, -1));
    lua_pop(L, 2);
    return s;
}

cz_sink *cz_sink_check(lua_State *L, int idx) {
    return (cz_sink *)luaL_checkudata(L, idx, CZ_SINK_MT);
}

void cz_sink_push_decoder(lua_State *L, int sink_idx) {
    cz_getuservalue(L, sink_idx);
    if (cz_testudata(L, -1, CZ_DECODER_MT) == NULL) luaL_error(L, "cozmox: the sink has lost its decoder");
}

int cz_sink_stopped(const cz_sink *s) { return s->stopped; }
void cz_sink_set_status(cz_sink *s, long status) { s->status = status; }
double cz_sink_received(const cz_sink *s) { return s->received; }
const char *cz_sink_message(const cz_sink *s) { return s->message; }

static int ascii_ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = (char)((*a >= 'A' && *a <= 'Z') ? *a + 32 : *a);
        if (x != *b) return 0;
    }
    return *a == *b;
}

void cz_sink_begin(lua_State *L, cz_sink *s, int dec_idx, long status, const char *coding) {
    zlib_end(s);
    s->status = status;
    s->received = 0;
    s->stopped = s->decode_failed = 0;
    s->kind = NULL;
    s->snip_len = 0;
    s->message[0] = '\0';
    s->coding = CODING_NONE;
    cz_decoder_rewind(L, dec_idx);
    if (coding == NULL || coding[0] == '\0' || ascii_ieq(coding, "identity")) return;
    if (ascii_ieq(coding, "gzip") || ascii_ieq(coding, "x-gzip")) s->coding = CODING_GZIP;
    else if (ascii_ieq(coding, "deflate")) s->coding = CODING_DEFLATE;
    else {
        /* Not asked for: a body cannot be read -- an empty one is fine
         * (HEAD, 204, 304, Content-Length: 0), as curl has it. */
        snprintf(s->message, sizeof s->message, "unsupported Content-Encoding '%.40s'", coding);
        s->coding = CODING_UNKNOWN;
        return;
    }
    s->zstate = Z_HEADER;
}

/* ------------------------------------------------------------ feeding */

static int stop(cz_sink *s, const char *kind) {
    s->stopped = 1;
    if (kind) s->kind = kind;
    return 0;
}

/* Decoded bytes: the limit, the snippet, the decoder. */
static int take(lua_State *L, cz_sink *s, int dec_idx, const char *p, size_t n) {
    if (n == 0) return 1;
    if ((double)n > s->max_bytes - s->received) {
        snprintf(s->message, sizeof s->message,
                 "response body larger than max_response_bytes (%.0f bytes)", s->max_bytes);
        return stop(s, "too_large");
    }
    s->received += (double)n;
    if (s->snip_len < CZ_SNIPPET_MAX) {
        size_t k = CZ_SNIPPET_MAX - s->snip_len;
        if (k > n) k = n;
        memcpy(s->snippet + s->snip_len, p, k);
        s->snip_len += k;
    }
    if (s->decode_failed) return s->snip_len < CZ_SNIPPET_MAX ? 1 : stop(s, NULL);
    if (!cz_decoder_feed_raw(L, dec_idx, p, n)) {
        cz_decoder *d = (cz_decoder *)lua_touserdata(L, dec_idx);
        s->decode_failed = 1;
        snprintf(s->message, sizeof s->message, "%s", cz_decoder_error(d));
        if (cz_decoder_oom(d)) return stop(s, "memory");
        /* A 2xx that does not decode is a decode error: stop now.  An
         * error page is read on until the snippet is full. */
        if (is2xx(s->status)) return stop(s, "decode");
        if (s->snip_len >= CZ_SNIPPET_MAX) return stop(s, NULL);
    }
    return 1;
}

static int zfail(cz_sink *s, const char *what) {
    snprintf(s->message, sizeof s->message, "%s", what);
    zlib_end(s);
    return stop(s, "decode");
}

/* zlib's own memory as kept blocks. */
static voidpf zalloc_kept(voidpf opaque, uInt items, uInt size) {
    if (size != 0 && items > (uInt)-1 / size) return Z_NULL;
    return cz_kalloc((cz_keeper *)opaque, NULL, (size_t)items * size);
}

static void zfree_kept(voidpf opaque, voidpf p) {
    cz_kfree((cz_keeper *)opaque, p);
}

/* Start the inflate stream once the first byte says which wrapper the
 * body has: gzip, zlib (RFC 1950, what "deflate" means) or -- as some
 * servers send for "deflate" -- a raw deflate stream. */
static int zstart(cz_sink *s, unsigned char b0, unsigned char b1, size_t avail) {
    int bits = 15 + 16; /* gzip */
    if (s->coding == CODING_DEFLATE) {
        int zlib_hdr = avail >= 2 ? ((b0 & 0x0f) == 8 && ((b0 << 8) | b1) % 31 == 0) : (b0 & 0x0f) == 8;
        bits = zlib_hdr ? 15 : -15;
    }
    if (s->zout == NULL) {
        s->zout = (unsigned char *)cz_kalloc(s->keeper, NULL, INFLATE_OUT);
        if (s->zout == NULL) {
            snprintf(s->message, sizeof s->message, "not enough memory to decode the response body");
            return stop(s, "memory");
        }
    }
    memset(&s->z, 0, sizeof s->z);
    s->z.zalloc = zalloc_kept;
    s->z.zfree = zfree_kept;
    s->z.opaque = s->keeper;
    if (inflateInit2(&s->z, bits) != Z_OK) {
        snprintf(s->message, sizeof s->message, "not enough memory to decode the response body");
        return stop(s, "memory");
    }
    s->zinit = 1;
    s->zstate = Z_RUNNING;
    return 1;
}

static int feed_coded(lua_State *L, cz_sink *s, int dec_idx, const unsigned char *p, size_t n) {
    while (n > 0) {
        int rc;
        size_t out, used;
        if (s->zstate == Z_DONE) {
            /* Another gzip member may follow; anything else is garbage. */
            if (s->coding == CODING_GZIP && p[0] == 0x1f) {
                zlib_end(s);
                s->zstate = Z_HEADER;
            } else {
                return zfail(s, s->coding == CODING_GZIP ? "gzip body has data after its end"
                                                        : "deflate body has data after its end");
            }
        }
        if (s->zstate == Z_HEADER && !zstart(s, p[0], n > 1 ? p[1] : 0, n)) return 0;
        s->z.next_in = (Bytef *)p;
        s->z.avail_in = n > 0x40000000u ? 0x40000000u : (uInt)n;
        s->z.next_out = s->zout;
        s->z.avail_out = INFLATE_OUT;
        rc = inflate(&s->z, Z_NO_FLUSH);
        used = (size_t)(s->z.next_in - (Bytef *)p);
        out = (size_t)(s->z.next_out - s->zout);
        p += used;
        n -= used;
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            return zfail(s, rc == Z_MEM_ERROR ? "not enough memory to decode the response body"
                            : s->coding == CODING_GZIP ? "invalid gzip body" : "invalid deflate body");
        }
        if (out > 0 && !take(L, s, dec_idx, (const char *)s->zout, out)) return 0;
        if (rc == Z_STREAM_END) {
            zlib_end(s);
            s->zstate = Z_DONE;
        } else if (used == 0 && out == 0) {
            return zfail(s, "invalid compressed body");
        }
    }
    return 1;
}

int cz_sink_feed(lua_State *L, cz_sink *s, int dec_idx, const char *p, size_t n) {
    int go;
    if (s->stopped) return 0;
    if (n == 0) return 1;
    if (s->coding == CODING_UNKNOWN) return stop(s, "decode");
    s->busy = 1;
    go = s->coding == CODING_NONE ? take(L, s, dec_idx, p, n) : feed_coded(L, s, dec_idx, (const unsigned char *)p, n);
    s->busy = 0;
    return go;
}

/* ------------------------------------------------------------ verdict */

static void set_str(lua_State *L, int rec_idx, const char *field, const char *v, size_t n) {
    lua_pushlstring(L, v, n);
    lua_setfield(L, rec_idx, field);
}

static void set_failure(lua_State *L, cz_sink *s, int rec_idx, const char *kind) {
    set_str(L, rec_idx, "kind", kind, strlen(kind));
    set_str(L, rec_idx, "message", s->message, strlen(s->message));
    set_str(L, rec_idx, "snippet", s->snippet, s->snip_len);
}

void cz_sink_finish(lua_State *L, cz_sink *s, int dec_idx, int rec_idx, int cut) {
    rec_idx = cz_absindex(L, rec_idx);
    if (s->kind != NULL) {
        set_failure(L, s, rec_idx, s->kind);
    } else if (cut && !s->stopped) {
        /* the transport's failure stands */
    } else if (s->zstate == Z_RUNNING) {
        snprintf(s->message, sizeof s->message, "%s body ended before the end of its compressed data",
                 s->coding == CODING_GZIP ? "gzip" : "deflate");
        set_failure(L, s, rec_idx, "decode");
    } else if (s->decode_failed) {
        set_failure(L, s, rec_idx, "decode");
    } else if (s->received > 0) {
        int ok;
        s->busy = 1;
        ok = cz_decoder_finish_raw(L, dec_idx);
        s->busy = 0;
        if (ok) {
            lua_setfield(L, rec_idx, "value");
        } else {
            cz_decoder *d = (cz_decoder *)lua_touserdata(L, dec_idx);
            snprintf(s->message, sizeof s->message, "%s", cz_decoder_error(d));
            set_failure(L, s, rec_idx, cz_decoder_oom(d) ? "memory" : "decode");
        }
    }
    cz_pushint64(L, (long long)s->received);
    lua_setfield(L, rec_idx, "bytes");
    zlib_end(s);
    cz_decoder_release(L, dec_idx);
}

/* ------------------------------------------------------------ Lua API */

/* core.sink(max_bytes, max_depth, big_integers) */
int cz_sink_new(lua_State *L) {
    lua_Number max_bytes = luaL_checknumber(L, 1);
    lua_Integer depth = luaL_checkinteger(L, 2);
    const char *big = luaL_optstring(L, 3, "number");
    luaL_argcheck(L, max_bytes >= 1, 1, "positive number expected");
    luaL_argcheck(L, depth >= 1 && depth <= 1000000, 2, "depth out of range");
    cz_sink_push(L, (double)max_bytes, (int)depth, strcmp(big, "string") == 0);
    return 1;
}

/* The Lua methods refuse a sink whose decoder is running: a finalizer or
 * hook that runs inside it must not rewind or release it under it. */
static cz_sink *check_idle(lua_State *L) {
    cz_sink *s = cz_sink_check(L, 1);
    if (s->busy) luaL_error(L, "cozmox: the sink is in use (re-entered while it decodes)");
    return s;
}

static int l_begin(lua_State *L) {
    cz_sink *s = check_idle(L);
    long status = (long)luaL_checkinteger(L, 2);
    const char *coding = luaL_optstring(L, 3, NULL);
    lua_settop(L, 3);
    cz_sink_push_decoder(L, 1);
    cz_sink_begin(L, s, 4, status, coding);
    return 0;
}

static int l_feed(lua_State *L) {
    cz_sink *s = check_idle(L);
    size_t n;
    const char *p = luaL_checklstring(L, 2, &n);
    lua_settop(L, 2);
    cz_sink_push_decoder(L, 1);
    lua_pushboolean(L, cz_sink_feed(L, s, 3, p, n));
    return 1;
}

static int l_finish(lua_State *L) {
    cz_sink *s = check_idle(L);
    int cut;
    luaL_checktype(L, 2, LUA_TTABLE);
    cut = lua_toboolean(L, 3);
    lua_settop(L, 2);
    luaL_checkstack(L, 8, NULL);
    cz_sink_push_decoder(L, 1);
    cz_sink_finish(L, s, 3, 2, cut);
    lua_settop(L, 2);
    return 1;
}

static int l_received(lua_State *L) {
    cz_pushint64(L, (long long)cz_sink_check(L, 1)->received);
    return 1;
}

static const luaL_Reg sink_methods[] = {
    {"begin", l_begin},
    {"feed", l_feed},
    {"finish", l_finish},
    {"received", l_received},
    {NULL, NULL}};

void cz_sink_register(lua_State *L) {
    cz_class(L, CZ_SINK_MT, sink_methods, sink_gc, NULL);
}
