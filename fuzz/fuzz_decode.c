/*
 * fuzz_decode.c -- libFuzzer target for the push JSON decoder (jdecode.c)
 * and, through the round trip, the encoder (jencode.c).
 *
 *   make fuzz [FUZZ_SECONDS=60]     builds build/fuzz/fuzz_decode and runs it
 *   build/fuzz/fuzz_decode FILE     replays one input (a crash artifact)
 *
 * Input: 4 parameter bytes h[0..3], then the document (an input shorter
 * than 4 bytes is all document, parameters 0).  The seed corpus is every
 * file of spec/fixtures and fuzz/seeds with 4 parameter bytes put in
 * front (fuzz/run.sh).
 *
 *   h[0] & 3      number of cuts - 1 (1..4 cuts, repeats allowed: a repeat
 *                 feeds an empty chunk)
 *   h[i]          cut i: h[i] mod (len + 1) for documents up to 255 bytes,
 *                 else (h[i] << 8 | h[i+1 mod 4]) scaled to 0..len
 *   h[1] & 7      log2 of the chunk size (1..128) for the Lua-level decoder
 *   h[2] & 1      a full garbage collection between the pieces at the cuts
 *   h[3] & 0x80   max_depth = 1 + (h[3] & 63) instead of the default 1000
 *   h[3] & 0x40   big_integers = "string" (integers beyond 2^53 as text)
 *
 * For each input, with a fresh Lua state holding only the JSON codec
 * (registered here exactly as core.c does, without the curl transport):
 *
 *   1. decode(doc) under lua_pcall: the reference outcome.
 *   2. The same document through the streaming decoder in every way the
 *      library offers, each of which must give the reference outcome
 *      (both fail, or both succeed with the same canonical value AND the
 *      same encode() bytes):
 *        a. the C API of the transport (cz_decoder_feed_raw/finish_raw)
 *           split at the cuts above, all on one coroutine, each piece
 *           copied into a block of exactly its size (reads past a
 *           piece's end are caught);
 *        b. the same decoder rewound (cz_decoder_rewind, as the transport
 *           does between requests) and fed again: one byte at a time for
 *           documents up to 1024 bytes, else at one middle cut with a
 *           full garbage collection before the second half;
 *        c. the Lua API d:feed()/d:finish() in chunks of 1..128 bytes,
 *           each from a new coroutine; after a successful finish, one
 *           more feed must be refused;
 *        d. documents up to 64 bytes: split at every single offset.
 *      With FUZZ_STRICT_ERRORS=1 in the environment, failures must also
 *      give the same message (reason and byte offset; off by default).
 *   3. When decode succeeded: e1 = encode(v) must succeed (a decoded value
 *      never holds NaN/inf, cycles or bad UTF-8), decode(e1) must give v
 *      again (canonically), and e2 = encode(decode(e1)) must equal e1 --
 *      byte for byte, or, when Lua's table traversal put object members in
 *      another order, with the same length and the same canonical value.
 *
 *   4. encode(v, { sort_keys = true, indent = 2 }) must decode to v too,
 *      and give the same bytes when run again on the decoded copy.
 *   6. Strings, SIMD against scalar (textscan.h, with SSSE3): windows
 *      [a, b) of the raw input (every length, not only multiples of 16,
 *      each copied into a block of exactly its size), as string text:
 *      cz_skip_text_ssse3 must stop where cz_skip_text_scalar does, with
 *      the same verdict; encode(w), encode({w, w, ... 40 times}) (the
 *      last ones from the encoder's memo) and encode({[w] = w}) must give
 *      the bytes of
 *      a reference encoder written here on the scalar scanner, or the
 *      same "invalid UTF-8 ... at byte N" error; and '"' .. w .. '"' and
 *      the whole document must decode through a decoder held to the
 *      scalar path exactly as through one allowed SSSE3 (value, or the
 *      very same error message), in one piece and cut mid-window.
 *   5. Numbers (src/numconv.c): the document, when it is one JSON number,
 *      must parse to strtod's bits (the fuzzer runs in the C locale); and
 *      every 8 bytes of the input, taken as a double, must print as text
 *      that both cz_parse_double and strtod read back bit for bit.
 *
 * The streams run on fresh coroutines (small Lua stacks), and every Lua
 * block carries guard bytes checked on realloc and free, so a push past
 * the room reserved on a Lua stack is caught although liblua itself is
 * not instrumented.
 *
 * Any disagreement aborts with a description (libFuzzer saves the input).
 * The canonical form sorts object keys and writes numbers by subtype and
 * bit pattern, so it compares values exactly (-0.0, integer vs float).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "compat.h"
#include "buffer.h"
#include "json.h"
#include "numconv.h"
#include "textscan.h"

/* jdecode.c's testing hook (see there). */
void cz_decoder_set_simd(cz_decoder *d, int on);

/* ----------------------------------------------------------- registration */

/* core.c's luaopen_cozmox_core minus cz_transport_register. */
static int open_codec(lua_State *L) {
    cz_buf_register(L);
    cz_json_register(L);
    lua_newtable(L);
    cz_json_export(L);
    return 1;
}

/* Fixed stack slots of the per-input state. */
#define IDX_M 1      /* the codec table */
#define IDX_OPTS 2   /* { max_depth = ... } */
#define IDX_ARRMT 3  /* the array metatable */

static void die(const char *what, const char *detail) {
    fprintf(stderr, "\nfuzz_decode: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* ------------------------------------------------------------ allocator */

/* liblua5.4 is not instrumented, so ASan does not see Lua itself write
 * past the end of a block -- which is what a C function pushing more
 * values than it reserved with lua_checkstack makes Lua do to its stack.
 * Every Lua block therefore gets GUARD bytes of a known pattern after it,
 * checked whenever Lua reallocates or frees the block (a stack grows by
 * reallocation; every block is freed by lua_close at the latest). */
#define GUARD 32
#define GUARD_BYTE 0xA5
#define HEADER 16 /* keeps Lua's blocks 16-byte aligned */

static void guard_check(unsigned char *base) {
    size_t size, i, last = 0;
    int hit = 0;
    memcpy(&size, base, sizeof size);
    for (i = 0; i < GUARD; i++)
        if (base[HEADER + size + i] != GUARD_BYTE) hit = 1, last = i;
    if (hit) {
        fprintf(stderr, "\nfuzz_decode: bytes up to %zu past the end of a %zu-byte Lua block were overwritten "
                "(a Lua stack overflow: values pushed without lua_checkstack?)\n", last + 1, size);
        abort();
    }
}

/* Under ASan the guard bytes are also poisoned while the block lives, so
 * instrumented code (the codec) reading past a Lua block -- a string's
 * end, say -- is reported at once (liblua is not instrumented: its own
 * stray writes are the pattern check's). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define GUARD_POISON(p) ASAN_POISON_MEMORY_REGION((p), GUARD)
#define GUARD_UNPOISON(p) ASAN_UNPOISON_MEMORY_REGION((p), GUARD)
#endif
#endif
#ifndef GUARD_POISON
#define GUARD_POISON(p) ((void)(p))
#define GUARD_UNPOISON(p) ((void)(p))
#endif

static void *guarded_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    unsigned char *base = ptr ? (unsigned char *)ptr - HEADER : NULL;
    (void)ud, (void)osize;
    if (base) {
        size_t old;
        memcpy(&old, base, sizeof old);
        GUARD_UNPOISON(base + HEADER + old);
        guard_check(base);
    }
    if (nsize == 0) {
        free(base);
        return NULL;
    }
    if (nsize > SIZE_MAX - HEADER - GUARD) return NULL;
    base = (unsigned char *)realloc(base, HEADER + nsize + GUARD);
    if (base == NULL) return NULL;
    memcpy(base, &nsize, sizeof nsize);
    memset(base + HEADER + nsize, GUARD_BYTE, GUARD);
    GUARD_POISON(base + HEADER + nsize);
    return base + HEADER;
}

/* ------------------------------------------------------ canonical form */

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const void *s, size_t n) {
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n) cap *= 2;
        b->p = (char *)realloc(b->p, cap);
        if (b->p == NULL) die("out of memory", NULL);
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

typedef struct keyref {
    const char *s;
    size_t n;
} keyref;

static int key_cmp(const void *a, const void *b) {
    const keyref *x = (const keyref *)a, *y = (const keyref *)b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->s, y->s, m);
    return c ? c : (x->n < y->n ? -1 : x->n > y->n);
}

/* The value at idx (absolute) in canonical text.  Only what decode makes
 * is expected: anything else is a bug in the decoder. */
static void canon(lua_State *L, int idx, sbuf *b) {
    char num[64];
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            snprintf(num, sizeof num, "i%lld;", (long long)lua_tointeger(L, idx));
        } else {
            double d = (double)lua_tonumber(L, idx);
            uint64_t bits;
            memcpy(&bits, &d, sizeof bits);
            snprintf(num, sizeof num, "d%016" PRIx64 ";", bits);
        }
        sb_str(b, num);
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        snprintf(num, sizeof num, "s%zu:", n);
        sb_str(b, num);
        sb_add(b, s, n);
        break;
    }
    case LUA_TBOOLEAN:
        sb_str(b, lua_toboolean(L, idx) ? "T" : "F");
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) != NULL) die("decode made a non-NULL light userdata", NULL);
        sb_str(b, "N");
        break;
    case LUA_TTABLE: {
        int is_array = 0;
        lua_Integer count = 0;
        if (!lua_checkstack(L, 4)) die("Lua stack exhausted in canon", NULL);
        if (lua_getmetatable(L, idx)) {
            if (!lua_rawequal(L, -1, IDX_ARRMT)) die("decoded table with a foreign metatable", NULL);
            is_array = 1;
            lua_pop(L, 1);
        }
        if (is_array) {
            lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                lua_pop(L, 1);
                if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n)
                    die("decoded array with a key outside 1..#t", NULL);
                count++;
            }
            if (count != n) die("decoded array with holes", NULL);
            sb_str(b, "[");
            for (i = 1; i <= n; i++) {
                lua_rawgeti(L, idx, i);
                canon(L, lua_gettop(L), b);
                lua_pop(L, 1);
            }
            sb_str(b, "]");
        } else {
            keyref *keys = NULL;
            size_t nk = 0, cap = 0, i;
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                lua_pop(L, 1);
                if (lua_type(L, -1) != LUA_TSTRING) die("decoded object with a non-string key", NULL);
                if (nk == cap) {
                    cap = cap ? 2 * cap : 16;
                    keys = (keyref *)realloc(keys, cap * sizeof *keys);
                    if (keys == NULL) die("out of memory", NULL);
                }
                /* Keys stay alive: they are keys of the table at idx. */
                keys[nk].s = lua_tolstring(L, -1, &keys[nk].n);
                nk++;
            }
            if (nk > 1) qsort(keys, nk, sizeof *keys, key_cmp);
            sb_str(b, "{");
            for (i = 0; i < nk; i++) {
                if (i > 0 && key_cmp(&keys[i - 1], &keys[i]) == 0) die("duplicate key in a table", NULL);
                lua_pushlstring(L, keys[i].s, keys[i].n);
                canon(L, lua_gettop(L), b);
                lua_rawget(L, idx);
                canon(L, lua_gettop(L), b);
                lua_pop(L, 1);
            }
            sb_str(b, "}");
            free(keys);
        }
        break;
    }
    default:
        die("decode made a value of type", luaL_typename(L, idx));
    }
}

/* ------------------------------------------------------------ outcomes */

typedef struct outcome {
    int ok;
    sbuf canon;      /* ok: canonical form */
    sbuf enc;        /* ok: encode() output */
    char msg[256];   /* !ok: the message */
    const char *why; /* !ok: msg without the API's prefix */
} outcome;

static void outcome_free(outcome *o) {
    free(o->canon.p);
    free(o->enc.p);
    memset(o, 0, sizeof *o);
}

/* Call M[name](args on top, nargs of them) under lua_pcall: 1 and the
 * nres results on the stack, or 0 and the error message on the stack. */
static int pcall_m(lua_State *L, const char *name, int nargs, int nres) {
    lua_getfield(L, IDX_M, name);
    lua_insert(L, -(nargs + 1));
    return lua_pcall(L, nargs, nres, 0) == LUA_OK;
}

/* encode(value at idx) -> its bytes in out; dies if encode refuses. */
static void encode_into(lua_State *L, int idx, sbuf *out, const char *who) {
    size_t n;
    const char *s;
    lua_pushvalue(L, idx);
    if (!pcall_m(L, "encode", 1, 1)) die("encode raised on a decoded value", lua_tostring(L, -1));
    s = lua_tolstring(L, -1, &n);
    (void)who;
    sb_add(out, s, n);
    lua_pop(L, 1);
}

/* Record the value on top (ok) or the message on top (!ok), pop it.
 * An outcome must not be copied (why points into msg). */
static void settle(lua_State *L, outcome *o, int ok, const char *fallback) {
    memset(o, 0, sizeof *o);
    o->ok = ok;
    if (ok) {
        int top = lua_gettop(L);
        canon(L, top, &o->canon);
        encode_into(L, top, &o->enc, "stream");
    } else {
        static const char *const prefixes[] = {"cozmox.json.decode: ", "cozmox.json: "};
        const char *m = lua_tostring(L, -1);
        size_t i;
        if (m == NULL) m = fallback ? fallback : "(no message)";
        snprintf(o->msg, sizeof o->msg, "%s", m);
        o->why = o->msg;
        for (i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
            if (strncmp(o->msg, prefixes[i], strlen(prefixes[i])) == 0) o->why = o->msg + strlen(prefixes[i]);
    }
    lua_pop(L, 1);
}

static void show(const char *label, const outcome *o) {
    if (o->ok)
        fprintf(stderr, "  %-22s ok, encode: %.*s%s\n", label, (int)(o->enc.n > 200 ? 200 : o->enc.n), o->enc.p,
                o->enc.n > 200 ? "..." : "");
    else
        fprintf(stderr, "  %-22s error: %s\n", label, o->msg);
}

static int strict_errors;

static void expect_same(const outcome *ref, const outcome *o, const char *label) {
    const char *why = NULL;
    if (ref->ok != o->ok) why = "one succeeded, the other failed";
    else if (ref->ok && (ref->canon.n != o->canon.n || memcmp(ref->canon.p, o->canon.p, ref->canon.n) != 0))
        why = "different values";
    else if (ref->ok && (ref->enc.n != o->enc.n || memcmp(ref->enc.p, o->enc.p, ref->enc.n) != 0))
        why = "same value, different encode() output";
    else if (strict_errors && !ref->ok && strcmp(ref->why, o->why) != 0)
        why = "different error messages";
    if (why == NULL) return;
    fprintf(stderr, "\nfuzz_decode: decode() and %s disagree: %s\n", label, why);
    show("decode()", ref);
    show(label, o);
    abort();
}

/* ------------------------------------------------------------- streams */

/* New decoder (with the input's max_depth) at the top; its index. */
static int new_decoder(lua_State *L) {
    lua_pushvalue(L, IDX_OPTS);
    if (!pcall_m(L, "decoder", 1, 1)) die("decoder() raised", lua_tostring(L, -1));
    return lua_gettop(L);
}

/* Each stream runs on a fresh coroutine of L: a new thread's Lua stack
 * starts small (40 slots), so a push the decoder did not reserve room
 * for runs off its end, into the guard bytes after the block (see
 * guarded_alloc), instead of into slack left by an earlier call.  The
 * decoder at dec (on L) is moved to slot 1 of the thread; the thread is
 * left on L's top for settle_thread. */
static lua_State *new_thread(lua_State *L, int dec) {
    lua_State *T = lua_newthread(L);
    lua_pushvalue(L, dec);
    lua_xmove(L, T, 1);
    return T;
}

/* Move T's result (value or message) to L and drop the thread. */
static void settle_thread(lua_State *L, lua_State *T, outcome *o, int ok) {
    lua_xmove(T, L, 1);
    lua_remove(L, -2);
    settle(L, o, ok, NULL);
}

/* Feed doc through the C API at the sorted cuts, then finish, all on one
 * thread as the transport does.  With gc, a full collection between the
 * pieces (it shrinks the thread's stack, as one may at any allocation). */
static void stream_raw(lua_State *L, int dec, const char *doc, size_t len, const size_t *cuts, int ncuts,
                       int gc, outcome *o) {
    lua_State *T = new_thread(L, dec);
    size_t from = 0;
    int i, ok = 1;
    for (i = 0; i <= ncuts && ok; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        if (gc && i > 0) lua_gc(T, LUA_GCCOLLECT, 0);
        {
            /* Each piece in its own block of exactly its size (an empty
             * one points past a 1-byte block), as curl hands over its
             * buffer: ASan then catches any read past a piece's end, not
             * only past the document's. */
            size_t n = to - from;
            char *piece = (char *)malloc(n ? n : 1);
            if (piece == NULL) die("out of memory", "stream_raw");
            memcpy(piece, doc + from, n);
            ok = cz_decoder_feed_raw(T, 1, piece + (n ? 0 : 1), n);
            free(piece);
        }
        from = to;
    }
    if (ok) ok = cz_decoder_finish_raw(T, 1);
    if (!ok) lua_pushstring(T, cz_decoder_error((cz_decoder *)lua_touserdata(T, 1)));
    settle_thread(L, T, o, ok);
}

/* Feed doc through d:feed() in chunks of `chunk` bytes, each chunk from
 * a new coroutine (any coroutine may feed a decoder), then d:finish()
 * and, after a success, one more d:feed() that must be refused. */
static void stream_lua(lua_State *L, const char *doc, size_t len, size_t chunk, outcome *o) {
    int dec = new_decoder(L), ok = 1;
    lua_State *T = NULL;
    size_t from = 0;
    while (ok && from < len) {
        size_t n = len - from < chunk ? len - from : chunk;
        if (T != NULL) lua_pop(L, 1); /* the previous chunk's thread */
        T = new_thread(L, dec);
        lua_getfield(T, 1, "feed");
        lua_pushvalue(T, 1);
        lua_pushlstring(T, doc + from, n);
        if (lua_pcall(T, 2, 2, 0) != LUA_OK) die("d:feed raised", lua_tostring(T, -1));
        if (lua_toboolean(T, -2)) lua_pop(T, 2);
        else {
            lua_remove(T, -2); /* keep the message */
            ok = 0;
        }
        from += n;
    }
    if (ok) {
        if (T != NULL) lua_pop(L, 1);
        T = new_thread(L, dec);
        lua_getfield(T, 1, "finish");
        lua_pushvalue(T, 1);
        if (lua_pcall(T, 1, 2, 0) != LUA_OK) die("d:finish raised", lua_tostring(T, -1));
        /* Success: the value (never nil: JSON null is NULL) padded with
         * nil; failure: nil, message. */
        if (lua_isnil(T, -2)) {
            lua_remove(T, -2);
            ok = 0;
        } else {
            lua_pop(T, 1);
            lua_getfield(T, 1, "feed");
            lua_pushvalue(T, 1);
            lua_pushliteral(T, " ");
            if (lua_pcall(T, 2, 2, 0) != LUA_OK) die("d:feed after finish raised", lua_tostring(T, -1));
            if (!lua_isnil(T, -2) || lua_type(T, -1) != LUA_TSTRING || !strstr(lua_tostring(T, -1), "finished"))
                die("d:feed after d:finish was not refused", NULL);
            lua_pop(T, 2);
        }
    }
    settle_thread(L, T, o, ok);
    lua_remove(L, dec);
}

static int size_cmp(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------ the test */

/* Step 5: the number conversions against the C library. */
static void check_numbers(const uint8_t *data, size_t size, const char *doc, size_t len) {
    size_t i;
    cz_number num;
    if (len > 0 && len < 4096 && cz_scan_number((const unsigned char *)doc, len, &num) == CZ_NUM_OK) {
        char *z = (char *)malloc(len + 1);
        double ours, ref;
        if (z == NULL) die("out of memory", NULL);
        memcpy(z, doc, len);
        z[len] = '\0';
        ours = cz_parse_double(doc, len);
        ref = strtod(z, NULL);
        if (memcmp(&ours, &ref, sizeof ours) != 0) {
            fprintf(stderr, "\nfuzz_decode: cz_parse_double(%s) = %.17g, strtod = %.17g\n", z, ours, ref);
            abort();
        }
        free(z);
    }
    for (i = 0; i + 8 <= size && i < 256; i += 8) {
        double x, back, c;
        char text[CZ_NUMBUF + 1];
        size_t n;
        memcpy(&x, data + i, 8);
        if (x != x || x - x != 0) continue; /* NaN, inf */
        n = cz_format_double(x, text);
        if (n > CZ_NUMBUF) die("cz_format_double wrote past CZ_NUMBUF", NULL);
        text[n] = '\0';
        back = cz_parse_double(text, n);
        c = strtod(text, NULL);
        if (memcmp(&back, &x, 8) != 0 || memcmp(&c, &x, 8) != 0) {
            fprintf(stderr, "\nfuzz_decode: %.17g printed as %s, read back as %.17g (strtod %.17g)\n", x, text,
                    back, c);
            abort();
        }
    }
}

/* ------------------------------------------------------ strings, SIMD */

/* The JSON text of string w[0..n) by the scalar scanner (the encoder's
 * rules): 0, and the offset of the bad sequence in *bad, if w is not
 * UTF-8. */
static int ref_encode(const unsigned char *w, size_t n, sbuf *out, size_t *bad) {
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *q = w, *end = w + n;
    sb_add(out, "\"", 1);
    for (;;) {
        const unsigned char *run = q;
        int k = 1;
        unsigned c;
        q = cz_skip_text_scalar(q, end, &k);
        sb_add(out, run, (size_t)(q - run));
        if (q == end) break;
        c = *q;
        if (c >= 0x80) {
            *bad = (size_t)(q - w);
            return 0;
        }
        if (c == '"' || c == '\\') {
            char e2[2] = {'\\', (char)c};
            sb_add(out, e2, 2);
        } else if (c == '\b') sb_str(out, "\\b");
        else if (c == '\t') sb_str(out, "\\t");
        else if (c == '\n') sb_str(out, "\\n");
        else if (c == '\f') sb_str(out, "\\f");
        else if (c == '\r') sb_str(out, "\\r");
        else {
            char u[6] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15]};
            sb_add(out, u, 6);
        }
        q++;
    }
    sb_add(out, "\"", 1);
    return 1;
}

/* encode(the value on top, popped) must give want (ok) or the UTF-8 error
 * at byte bad + 1. */
static void expect_encoded(lua_State *L, int ok, const sbuf *want, size_t bad, const char *what) {
    char msg[96];
    if (pcall_m(L, "encode", 1, 1) != ok) {
        fprintf(stderr, "\nfuzz_decode: %s: encode %s: %s\n", what, ok ? "raised" : "succeeded",
                lua_tostring(L, -1));
        abort();
    }
    if (ok) {
        size_t n;
        const char *got = lua_tolstring(L, -1, &n);
        if (n != want->n || memcmp(got, want->p, n) != 0) {
            fprintf(stderr, "\nfuzz_decode: %s: encode gave %.*s\n  reference %.*s\n", what, (int)n, got,
                    (int)want->n, want->p);
            abort();
        }
    } else {
        snprintf(msg, sizeof msg, "cozmox.json.encode: invalid UTF-8 in string at byte %zu", bad + 1);
        if (strcmp(lua_tostring(L, -1), msg) != 0) {
            fprintf(stderr, "\nfuzz_decode: %s: encode said %s\n  reference %s\n", what, lua_tostring(L, -1), msg);
            abort();
        }
    }
    lua_pop(L, 1);
}

/* Decode doc[0..len) cut at `cut` (len: not cut) through a scalar-only
 * decoder and through a default one: the same outcome, message and all. */
static void decode_both_ways(lua_State *L, const char *doc, size_t len, size_t cut, const char *label) {
    outcome a, b;
    int dec, strict = strict_errors;
    dec = new_decoder(L);
    cz_decoder_set_simd((cz_decoder *)lua_touserdata(L, dec), 0);
    stream_raw(L, dec, doc, len, &cut, cut < len, 0, &a);
    lua_settop(L, IDX_ARRMT);
    dec = new_decoder(L);
    stream_raw(L, dec, doc, len, &cut, cut < len, 0, &b);
    lua_settop(L, IDX_ARRMT);
    strict_errors = 1;
    expect_same(&a, &b, label);
    strict_errors = strict;
    outcome_free(&a);
    outcome_free(&b);
}

static void check_strings(lua_State *L, const uint8_t *data, size_t size, const char *doc, size_t len) {
    size_t i;
    decode_both_ways(L, doc, len, len, "the whole document, scalar vs SSSE3");
    for (i = 0; i < 12 && i < size; i++) {
        /* Windows: a near the start, lengths spread over 0..size. */
        size_t a = (i * 7 + data[i % size]) % (size + 1), n = size - a, j;
        unsigned char *w;
        char *quoted;
        sbuf want = {NULL, 0, 0};
        size_t bad = 0;
        int ok;
        if (i & 1) n = n * (data[(i + 1) % size] + 1u) / 256;
        w = (unsigned char *)malloc(n ? n : 1);
        quoted = (char *)malloc(n + 2);
        if (w == NULL || quoted == NULL) die("out of memory", "check_strings");
        memcpy(w, data + a, n);
#if defined(CZ_TEXT_SSSE3)
        if (cz_have_ssse3() && n >= 16) {
            int k1 = 1, k2 = 1;
            const unsigned char *p1 = cz_skip_text_scalar(w, w + n, &k1);
            const unsigned char *p2 = cz_skip_text_ssse3(w, w + n, &k2);
            if (p1 != p2 || (p1 < w + n && *p1 >= 0x80 && k1 != k2)) {
                fprintf(stderr, "\nfuzz_decode: cz_skip_text: scalar stops at %zu (k %d), SSSE3 at %zu (k %d)\n",
                        (size_t)(p1 - w), k1, (size_t)(p2 - w), k2);
                abort();
            }
        }
#endif
        ok = ref_encode(w, n, &want, &bad);
        lua_pushlstring(L, (const char *)w, n);
        expect_encoded(L, ok, &want, bad, "a window as a string");
        if (ok) {
            /* 40 copies: past the first 32 strings they come from the
             * encoder's memo. */
            sbuf two = {NULL, 0, 0};
            int r;
            sb_add(&two, "[", 1);
            lua_createtable(L, 40, 0);
            for (r = 1; r <= 40; r++) {
                if (r > 1) sb_add(&two, ",", 1);
                sb_add(&two, want.p, want.n);
                lua_pushlstring(L, (const char *)w, n);
                lua_rawseti(L, -2, r);
            }
            sb_add(&two, "]", 1);
            lua_pushvalue(L, IDX_ARRMT);
            lua_setmetatable(L, -2);
            expect_encoded(L, 1, &two, 0, "a window 40 times in an array");
            two.n = 0;
            sb_add(&two, "{", 1);
            sb_add(&two, want.p, want.n);
            sb_add(&two, ":", 1);
            sb_add(&two, want.p, want.n);
            sb_add(&two, "}", 1);
            lua_createtable(L, 0, 1);
            lua_pushlstring(L, (const char *)w, n);
            lua_pushvalue(L, -1);
            lua_rawset(L, -3);
            expect_encoded(L, 1, &two, 0, "a window as key and value");
            free(two.p);
        } else {
            lua_createtable(L, 0, 1);
            lua_pushlstring(L, (const char *)w, n);
            lua_pushboolean(L, 1);
            lua_rawset(L, -3);
            expect_encoded(L, 0, &want, bad, "a window as a key");
        }
        free(want.p);
        quoted[0] = '"';
        memcpy(quoted + 1, w, n);
        quoted[n + 1] = '"';
        decode_both_ways(L, quoted, n + 2, n + 2, "a quoted window, scalar vs SSSE3");
        j = n ? 1 + data[(i + 2) % size] % n : 0;
        decode_both_ways(L, quoted, n + 2, j, "a quoted window cut inside, scalar vs SSSE3");
        free(w);
        free(quoted);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *s = getenv("FUZZ_STRICT_ERRORS");
    (void)argc, (void)argv;
    strict_errors = s != NULL && strcmp(s, "1") == 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t h[4] = {0, 0, 0, 0};
    const char *doc = (const char *)data;
    size_t len = size, cuts[4], c;
    int ncuts, i, dec;
    lua_State *L;
    outcome ref, o;

    if (size >= 4) {
        memcpy(h, data, 4);
        doc += 4;
        len -= 4;
    }
    ncuts = 1 + (h[0] & 3);
    for (i = 0; i < ncuts; i++) {
        if (len <= 255) cuts[i] = h[i] % (len + 1);
        else cuts[i] = (size_t)(((uint64_t)((unsigned)h[i] << 8 | h[(i + 1) & 3]) * (len + 1)) >> 16);
    }
    qsort(cuts, (size_t)ncuts, sizeof cuts[0], size_cmp);

    L = lua_newstate(guarded_alloc, NULL);
    if (L == NULL) die("lua_newstate failed", NULL);
    lua_pushcfunction(L, open_codec);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) die("registration failed", lua_tostring(L, -1));
    lua_createtable(L, 0, 1); /* IDX_OPTS */
    if (h[3] & 0x80) {
        lua_pushinteger(L, 1 + (h[3] & 63));
        lua_setfield(L, IDX_OPTS, "max_depth");
    }
    if (h[3] & 0x40) {
        lua_pushliteral(L, "string");
        lua_setfield(L, IDX_OPTS, "big_integers");
    }
    luaL_getmetatable(L, CZ_ARRAY_MT); /* IDX_ARRMT */

    /* 1. The reference: decode(doc). */
    lua_pushlstring(L, doc, len);
    lua_pushvalue(L, IDX_OPTS);
    settle(L, &ref, pcall_m(L, "decode", 2, 1), NULL);

    /* 2a. The transport's C API at the cuts. */
    dec = new_decoder(L);
    stream_raw(L, dec, doc, len, cuts, ncuts, h[2] & 1, &o);
    expect_same(&ref, &o, "feed_raw at the cuts");
    outcome_free(&o);

    /* 2b. The same decoder, rewound. */
    cz_decoder_rewind(L, dec);
    if (len <= 1024) {
        size_t *all = (size_t *)malloc((len + 1) * sizeof *all);
        if (all == NULL) die("out of memory", NULL);
        for (c = 0; c < len; c++) all[c] = c;
        stream_raw(L, dec, doc, len, all, (int)len, 0, &o);
        free(all);
    } else {
        c = len / 2;
        stream_raw(L, dec, doc, len, &c, 1, 1, &o);
    }
    expect_same(&ref, &o, "rewound feed_raw");
    outcome_free(&o);
    lua_settop(L, IDX_ARRMT);

    /* 2c. The Lua API. */
    stream_lua(L, doc, len, (size_t)1 << (h[1] & 7), &o);
    expect_same(&ref, &o, "d:feed/d:finish");
    outcome_free(&o);

    /* 2d. Short documents: every single cut. */
    if (len <= 64) {
        for (c = 0; c <= len; c++) {
            dec = new_decoder(L);
            stream_raw(L, dec, doc, len, &c, 1, 0, &o);
            expect_same(&ref, &o, "feed_raw, one cut");
            outcome_free(&o);
            lua_settop(L, IDX_ARRMT);
        }
    }

    /* 3. encode -> decode -> encode. */
    if (ref.ok) {
        outcome back, again;
        lua_pushlstring(L, ref.enc.p, ref.enc.n);
        if (!pcall_m(L, "decode", 1, 1)) die("decode(encode(v)) failed", lua_tostring(L, -1));
        settle(L, &back, 1, NULL);
        if (back.canon.n != ref.canon.n || memcmp(back.canon.p, ref.canon.p, ref.canon.n) != 0) {
            show("decode()", &ref);
            die("decode(encode(v)) differs from v", NULL);
        }
        lua_pushlstring(L, back.enc.p, back.enc.n);
        if (!pcall_m(L, "decode", 1, 1)) die("decode(encode(decode(encode(v)))) failed", lua_tostring(L, -1));
        settle(L, &again, 1, NULL);
        if (back.enc.n != ref.enc.n ||
            (memcmp(back.enc.p, ref.enc.p, ref.enc.n) != 0 &&
             (again.canon.n != ref.canon.n || memcmp(again.canon.p, ref.canon.p, ref.canon.n) != 0))) {
            show("encode(v)", &ref);
            show("encode(decode(...))", &back);
            die("encode is not a fixed point of decode", NULL);
        }
        outcome_free(&back);
        outcome_free(&again);
    }

    /* 4. Sorted, indented output. */
    if (ref.ok) {
        outcome pretty;
        size_t n1, n2;
        const char *p1, *p2;
        lua_pushlstring(L, doc, len);
        lua_pushvalue(L, IDX_OPTS);
        if (!pcall_m(L, "decode", 2, 1)) die("decode failed the second time", lua_tostring(L, -1));
        lua_createtable(L, 0, 2);
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "sort_keys");
        lua_pushinteger(L, 2);
        lua_setfield(L, -2, "indent");
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -2);
        if (!pcall_m(L, "encode", 2, 1)) die("encode(v, {sort_keys, indent}) raised", lua_tostring(L, -1));
        /* stack: v, opts, text */
        lua_pushvalue(L, -1);
        lua_pushvalue(L, IDX_OPTS);
        if (!pcall_m(L, "decode", 2, 1)) die("decode(pretty) failed", lua_tostring(L, -1));
        lua_pushvalue(L, -1);
        lua_pushvalue(L, -4);
        if (!pcall_m(L, "encode", 2, 1)) die("encode of the pretty copy raised", lua_tostring(L, -1));
        /* stack: v, opts, text, copy, text2 */
        p1 = lua_tolstring(L, -3, &n1);
        p2 = lua_tolstring(L, -1, &n2);
        if (n1 != n2 || memcmp(p1, p2, n1) != 0) die("sorted pretty output differs between equal values", NULL);
        lua_pop(L, 1);
        settle(L, &pretty, 1, NULL);
        if (pretty.canon.n != ref.canon.n || memcmp(pretty.canon.p, ref.canon.p, ref.canon.n) != 0) {
            show("decode()", &ref);
            die("decode(encode(v, {sort_keys, indent})) differs from v", NULL);
        }
        outcome_free(&pretty);
        lua_settop(L, IDX_ARRMT);
    }
    check_numbers(data, size, doc, len);
    check_strings(L, data, size, doc, len);
    outcome_free(&ref);
    lua_close(L);
    return 0;
}
