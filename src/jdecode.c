/*
 * jdecode.c -- a push (streaming) JSON decoder that builds Lua values.
 *
 * The decoder takes the document in whatever pieces it is given and
 * builds tables directly on the Lua stack; nothing needs the whole text
 * in one buffer.  No C recursion: nesting is an explicit frame array
 * bounded by max_depth.
 *
 * Between two feeds the partially built values (open containers and a
 * pending object key) are parked, in stack order, in the decoder's
 * uservalue table and pushed back at the start of the next feed: O(depth)
 * per chunk, nothing per value.  A token (string, number, literal) cut by
 * a chunk boundary is copied into `carry` and completed from the next
 * chunk; tokens wholly inside a chunk are parsed in place, and strings
 * without escapes go from the input bytes straight to lua_pushlstring.
 *
 * Parse errors never raise inside the parser: they record a message
 * with the byte offset and return 0.  Only the Lua API itself may raise
 * (memory errors); callers that must not unwind (curl callbacks) go
 * through cz_decoder_feed_raw, which runs the parser under lua_pcall and
 * allocates nothing before it (callers reserve stack space up front).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "compat.h"
#include "buffer.h"
#include "json.h"
#include "keeper.h"
#include "numconv.h"
#include "textscan.h"

#define DECODER_MT CZ_DECODER_MT
#define STRCACHE_KEY "cozmox.strcache"

/* Short strings recently pushed by any decoder of this Lua state: keys
 * and small values repeat a lot in API documents, and handing out the
 * cached Lua string skips lua_pushlstring's hashing and interning.  The C
 * side keeps the bytes (two-way set associative, so two hot strings that
 * hash alike do not evict each other); the strings themselves are
 * anchored in the userdata's user value (a table with one slot per
 * entry: set * 2 + way + 1). */
#define STRCACHE_SETS 512
#define STRCACHE_MAXLEN 40 /* Lua 5.3/5.4 intern strings up to 40 bytes: ids, UUIDs */
typedef struct strentry {
    unsigned char len; /* length + 1; 0 = empty */
    unsigned char bytes[47]; /* STRCACHE_MAXLEN used; 48-byte entries */
} strentry;
typedef struct strcache {
    strentry e[STRCACHE_SETS][2];
    unsigned char next_way[STRCACHE_SETS]; /* way the next miss replaces */
} strcache;

enum state {
    S_VALUE,     /* a value: document start, after ':' or after ',' in an array */
    S_ARR_FIRST, /* after '[': a value or ']' */
    S_ARR_NEXT,  /* after an array element: ',' or ']' */
    S_OBJ_FIRST, /* after '{': a key or '}' */
    S_OBJ_KEY,   /* after ',' in an object: a key */
    S_OBJ_COLON, /* after a key: ':' */
    S_OBJ_NEXT,  /* after a member: ',' or '}' */
    S_DONE       /* after the top-level value: only whitespace */
};

enum carry_kind { C_NONE, C_STRING, C_KEY, C_NUMBER, C_LITERAL };

/* An open container.  Its slot on the stack (base + rel) holds a
 * placeholder until the table is created; the values (arrays) or
 * key/value pairs (objects) parsed since the last flush sit above it,
 * `pending` of them.  Tables are created only at a flush, with the exact
 * size known by then, so small containers never rehash. */
typedef struct frame {
    lua_Integer n; /* array elements already stored in the table */
    int rel;       /* stack slot relative to the parse base */
    int pending;   /* values / pairs on the stack, not yet stored */
    int is_array;
    int has_table;
    /* Objects: whether two pending keys may be equal.  Without duplicates
     * the pairs can be stored from the top of the stack in reverse (each
     * lua_rawset pops its pair); with one, the later pair must win, so
     * they are stored in document order from copies.  Detection: a hash
     * per pending key (the decoder's keyh, from index rel + 1 on) and a
     * 64-bit filter of them (bloom); escaped keys count as possible
     * duplicates. */
    int maybe_dup;
    uint64_t bloom;
} frame;

/* Values or pairs a frame keeps on the stack before storing them. */
#define FLUSH_AT 64
/* Beyond this many parse slots on the stack, a container's pending values
 * are stored before a child opens (bounds the stack, 5.1 has 8000). */
#define STACK_SOFT_LIMIT 1500

struct cz_decoder {
    int max_depth;
    int big_strings; /* integer literals beyond +-2^53 become strings */
    int depth;       /* open containers = frames in use */
    int cap;         /* frames allocated */
    int state;
    int nsaved;      /* values parked in the uservalue table */
    int failed;      /* set while parsing and on error; cleared on success */
    int finished;
    int carry_kind;
    int carry_esc;   /* string carry: the last byte is an unpaired backslash */
    int oom;         /* the last failure was Lua running out of memory */
    int simd;        /* the SSSE3 string paths may run (textscan.h) */
    size_t offset;   /* bytes consumed before the current chunk */
    size_t carry_at; /* offset where the carried token began */
    frame *frames;
    uint32_t *keyh;  /* hashes of pending object keys, see frame */
    int keyh_cap;
    cz_keeper *keeper; /* the state's: frames, keyh, carry and scratch are kept blocks */
    strcache *cache; /* set for the duration of a parse call */
    int cache_idx;   /* stack index of the cache's string table */
    cz_buf carry;
    cz_buf scratch;  /* unescaped string text */
    char err[200];
};


static const unsigned char is_ws[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [' '] = 1};

static const unsigned char is_numchar[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
    ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['-'] = 1, ['+'] = 1,
    ['.'] = 1, ['e'] = 1, ['E'] = 1};

/* ---------------------------------------------------------------- errors */

static int fail_at(cz_decoder *d, size_t at, const char *what) {
    snprintf(d->err, sizeof d->err, "%s at byte offset %lu", what, (unsigned long)at);
    return 0;
}

static int fail_char(cz_decoder *d, size_t at, unsigned char c, const char *expected) {
    char what[120];
    if (c >= 0x20 && c < 0x7f)
        snprintf(what, sizeof what, "unexpected character '%c' (expected %s)", c, expected);
    else
        snprintf(what, sizeof what, "unexpected byte 0x%02X (expected %s)", c, expected);
    return fail_at(d, at, what);
}

/* ------------------------------------------------------------ utf-8, hex */

/* Value of a hex digit, 0xFF for any other byte. */
#define CZ_H3(c) ((c) >= '0' && (c) <= '9' ? (c) - '0' : (c) >= 'a' && (c) <= 'f' ? (c) - 'a' + 10 \
                  : (c) >= 'A' && (c) <= 'F' ? (c) - 'A' + 10 : 0xFF)
#define CZ_H1(c) CZ_H3(c), CZ_H3((c) + 1), CZ_H3((c) + 2), CZ_H3((c) + 3)
#define CZ_H4(c) CZ_H1(c), CZ_H1((c) + 4), CZ_H1((c) + 8), CZ_H1((c) + 12)
#define CZ_H16(c) CZ_H4(c), CZ_H4((c) + 16), CZ_H4((c) + 32), CZ_H4((c) + 48)
static const unsigned char hex_value[256] = {CZ_H16(0), CZ_H16(64), CZ_H16(128), CZ_H16(192)};
#undef CZ_H16
#undef CZ_H4
#undef CZ_H1
#undef CZ_H3

/* The four hex digits at p, -1 if any is not one. */
static inline int hex4(const unsigned char *p) {
    unsigned a = hex_value[p[0]], b = hex_value[p[1]], c = hex_value[p[2]], e = hex_value[p[3]];
    if ((a | b | c | e) & 0xF0) return -1;
    return (int)(a << 12 | b << 8 | c << 4 | e);
}

/* Whether the (fewer than four) bytes in [p, end) could begin a \u
 * escape's hex digits: only then is it worth waiting for more input. */
static int hex_prefix(const unsigned char *p, const unsigned char *end) {
    for (; p < end; p++) {
        unsigned c = *p | 0x20;
        if (!((*p >= '0' && *p <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---------------------------------------------------------------- tokens */

/* Result codes of the token scanners. */
#define TOK_ERR 0
#define TOK_OK 1
#define TOK_MORE 2 /* ran out of input inside the token */

/* The rest of a string with escapes, from q (the first byte not decoded
 * yet: the start of a character) into d->scratch, which holds the text
 * before q decoded; push it.  s: the opening quote, `at` its document
 * offset.  The reference for every faster path. */
static int string_rest(lua_State *L, cz_decoder *d, const unsigned char *s,
                       const unsigned char *q, const unsigned char *end,
                       const unsigned char **next, size_t at) {
    cz_buf *b = &d->scratch;
    while (q < end) {
        const unsigned char *run = q;
        unsigned c;
        int k = 1;
        q = d->simd ? cz_skip_text(q, end, &k) : cz_skip_text_scalar(q, end, &k);
        if (q > run && !cz_buf_add(b, run, (size_t)(q - run))) return fail_at(d, at, "out of memory");
        if (q == end) break;
        if (k < 0) return TOK_MORE;
        if (k == 0) return fail_at(d, at + (size_t)(q - s), "invalid UTF-8 in string");
        c = *q;
        if (c == '"') {
            lua_pushlstring(L, b->data, b->len);
            *next = q + 1;
            return TOK_OK;
        }
        if (c == '\\') {
            unsigned cp;
            char u[4];
            if (end - q < 2) return TOK_MORE;
            switch (q[1]) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                int h;
                if (end - q < 6 && hex_prefix(q + 2, end)) return TOK_MORE;
                if (end - q < 6 || (h = hex4(q + 2)) < 0)
                    return fail_at(d, at + (size_t)(q - s), "invalid \\u escape in string");
                cp = (unsigned)h;
                q += 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    /* A high surrogate pairs with an immediately following
                     * \uDC00-\uDFFF; unpaired halves become U+FFFD. */
                    if (q == end || (q[0] == '\\' && (end - q < 2 || (q[1] == 'u' && end - q < 6 &&
                                                                      hex_prefix(q + 2, end)))))
                        return TOK_MORE;
                    if (q[0] == '\\' && q[1] == 'u' && end - q >= 6) {
                        int lo = hex4(q + 2);
                        if (lo >= 0xDC00 && lo <= 0xDFFF) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
                            q += 6;
                        } else cp = 0xFFFD;
                    } else cp = 0xFFFD;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) cp = 0xFFFD;
                if (!cz_buf_add(b, u, put_utf8(u, cp))) return fail_at(d, at, "out of memory");
                continue;
            }
            default:
                return fail_at(d, at + (size_t)(q - s), "invalid escape in string");
            }
            if (!cz_buf_addc(b, (char)c)) return fail_at(d, at, "out of memory");
            q += 2;
            continue;
        }
        return fail_at(d, at + (size_t)(q - s), "control character in string");
    }
    return TOK_MORE;
}

#if defined(CZ_TEXT_SSSE3)
/* The code point of the \u escape at q (q[1] == 'u', at least 12 bytes
 * readable from q), pairing a high surrogate with a \uDC00-\uDFFF escape
 * right after it (unpaired halves become U+FFFD), and the escape's
 * length; -1 for invalid hex digits. */
static inline long unicode_escape(const unsigned char *q, int *len) {
    int h = hex4(q + 2), lo;
    *len = 6;
    if (h < 0) return -1;
    if (h >= 0xD800 && h <= 0xDBFF) {
        if (q[6] == '\\' && q[7] == 'u' && (lo = hex4(q + 8)) >= 0xDC00 && lo <= 0xDFFF) {
            *len = 12;
            return 0x10000 + ((long)(h - 0xD800) << 10) + (lo - 0xDC00);
        }
        return 0xFFFD;
    }
    return h >= 0xDC00 && h <= 0xDFFF ? 0xFFFD : h;
}

/* Decoded value of the escape letter after a backslash ('u' apart), 0
 * for an invalid one. */
static const unsigned char escape_char[256] = {
    ['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b',
    ['f'] = '\f', ['n'] = '\n', ['r'] = '\r', ['t'] = '\t'};

#define STR_SCALAR 3  /* string_fast: the scalar path goes on from *qp */
#define STR_RESTART 4 /* string_fast: something is wrong: rescan from the quote */

/* string_rest's fast path (SSSE3): sixteen bytes at a time are stored to
 * the scratch buffer unconditionally, then scanned for the end of the
 * run and checked as UTF-8 (textscan.h), so a run between two escapes
 * costs one block or two.  It never judges an error: on any doubt (a bad
 * byte or escape somewhere, a control character, out of memory) it
 * answers STR_RESTART and the scalar path decodes the string again from
 * its start, so messages and offsets are the scalar path's.  Close to
 * `end` (less than a block, or an escape that may be cut) it hands over
 * with STR_SCALAR, *qp at the start of a character and the scratch
 * buffer holding everything before it. */
static CZ_NOINLINE CZ_SSSE3 int string_fast(lua_State *L, cz_decoder *d, const unsigned char **qp,
                                const unsigned char *end, const unsigned char **next) {
    const __m128i zero = _mm_setzero_si128();
    cz_buf *b = &d->scratch;
    const unsigned char *q = *qp;
    __m128i prev = zero, err = zero;
    unsigned prev_hi = 0; /* high bytes in prev */
    size_t len = b->len;
    int i;
    for (;;) {
        __m128i v;
        unsigned stop;
        int n;
        if (end - q < 16) break;
        if (b->cap - len < 32) {
            b->len = len;
            if (!cz_buf_grow(b, 32)) return STR_RESTART;
        }
        v = _mm_loadu_si128((const __m128i *)(const void *)q);
        _mm_storeu_si128((__m128i *)(void *)(b->data + len), v);
        stop = cz_text_block(v, &prev, &prev_hi, &err);
        if (stop == 0) {
            q += 16, len += 16;
            continue;
        }
        n = __builtin_ctz(stop);
        q += n, len += (size_t)n;
        if (*q == '"') {
            if (cz_nonzero16(err)) return STR_RESTART;
            b->len = len;
            lua_pushlstring(L, b->data, len);
            *next = q + 1;
            return TOK_OK;
        }
        if (*q != '\\') return STR_RESTART;
        /* The escape, and any that follow it straight away. */
        do {
            long cp;
            int elen;
            if (end - q < 12) {
                b->len = len;
                *qp = q;
                return cz_nonzero16(err) ? STR_RESTART : STR_SCALAR;
            }
            if (b->cap - len < 32) {
                b->len = len;
                if (!cz_buf_grow(b, 32)) return STR_RESTART;
            }
            if (q[1] != 'u') {
                if ((b->data[len] = (char)escape_char[q[1]]) == 0) return STR_RESTART;
                len++, q += 2;
                continue;
            }
            if ((cp = unicode_escape(q, &elen)) < 0) return STR_RESTART;
            len += put_utf8(b->data + len, (unsigned)cp);
            q += elen;
        } while (q < end && *q == '\\');
    }
    if (cz_nonzero16(err)) return STR_RESTART;
    /* Hand over at the start of the sequence the last block left open. */
    for (i = 1; i <= 3; i++) {
        unsigned c = q[-i];
        if (c < 0x80) break;
        if (c >= 0xC0) {
            if ((c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2) > i) q -= i, len -= (size_t)i;
            break;
        }
    }
    b->len = len;
    *qp = q;
    return STR_SCALAR;
}
#endif

/* The string whose opening quote is at s, with an escape at q: decode
 * into d->scratch and push it.  `at` is s's document offset. */
static int string_slow(lua_State *L, cz_decoder *d, const unsigned char *s,
                       const unsigned char *q, const unsigned char *end,
                       const unsigned char **next, size_t at) {
    cz_buf *b = &d->scratch;
    b->len = 0;
    if (!cz_buf_add(b, s + 1, (size_t)(q - s - 1))) return fail_at(d, at, "out of memory");
#if defined(CZ_TEXT_SSSE3)
    if (d->simd) {
        int r = string_fast(L, d, &q, end, next);
        if (r == TOK_OK) return r;
        if (r == STR_RESTART) b->len = 0, q = s + 1;
    }
#endif
    return string_rest(L, d, s, q, end, next, at);
}

/* A cheap hash of p[0..n): its length and first and last eight bytes
 * (all of a key up to 16 bytes).  The top half of a 64-bit product
 * depends on all the bits below it, so the result is the top 32 bits and
 * its users take their bits from the top (cache set: bits 16-25; key
 * filter: bits 26-31).  It picks the cache set and tells object keys
 * apart; equal hashes only cost a slower path, never a wrong result. */
static inline uint32_t str_hash(const unsigned char *p, size_t n) {
    uint64_t a, b, h;
    uint32_t a4, b4;
    if (n >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + n - 8, 8);
    } else if (n >= 4) {
        memcpy(&a4, p, 4);
        memcpy(&b4, p + n - 4, 4);
        a = a4, b = b4;
    } else {
        a = n ? (uint64_t)p[0] | (uint64_t)p[n - 1] << 8 | (uint64_t)p[n / 2] << 16 : 0;
        b = 0;
    }
    h = (a * 0x9E3779B97F4A7C15ULL) ^ ((b + (uint64_t)n) * 0xC2B2AE3D27D4EB4FULL);
    return (uint32_t)(h >> 32);
}

static inline uint32_t load32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Whether the n (<= STRCACHE_MAXLEN) bytes at p equal those of entry e
 * (same length already checked).  Overlapping word compares, none of
 * which reads past p + n. */
static inline int strentry_eq(const strentry *e, const unsigned char *p, size_t n) {
    const unsigned char *a = e->bytes;
    if (n >= 8) {
        if (cz_load64(a) != cz_load64(p) || cz_load64(a + n - 8) != cz_load64(p + n - 8)) return 0;
        if (n > 16 && cz_load64(a + 8) != cz_load64(p + 8)) return 0;
        if (n > 24 && cz_load64(a + 16) != cz_load64(p + 16)) return 0;
        if (n > 32 && cz_load64(a + 24) != cz_load64(p + 24)) return 0;
        return 1;
    }
    if (n >= 4) return load32(a) == load32(p) && load32(a + n - 4) == load32(p + n - 4);
    return n == 0 || (a[0] == p[0] && a[n / 2] == p[n / 2] && a[n - 1] == p[n - 1]);
}

/* Cache miss: intern p[0..n) and let it replace one way of `set`. */
static CZ_NOINLINE void strcache_fill(lua_State *L, cz_decoder *d, const unsigned char *p, size_t n, unsigned set) {
    strcache *c = d->cache;
    unsigned way = c->next_way[set];
    strentry *e = &c->e[set][way];
    c->next_way[set] = (unsigned char)(way ^ 1);
    lua_pushlstring(L, (const char *)p, n);
    lua_pushvalue(L, -1);
    lua_rawseti(L, d->cache_idx, (int)(set * 2 + way + 1));
    e->len = (unsigned char)(n + 1);
    memcpy(e->bytes, p, n);
}

/* Push the string p[0..n), whose str_hash is h: from the cache when it
 * holds it. */
static inline void push_short(lua_State *L, cz_decoder *d, const unsigned char *p, size_t n, uint32_t h) {
    strcache *c = d->cache;
    unsigned set;
    strentry *e;
    if (c == NULL || n > STRCACHE_MAXLEN) {
        lua_pushlstring(L, (const char *)p, n);
        return;
    }
    set = (h >> 16) % STRCACHE_SETS;
    e = c->e[set];
    if (e[0].len == n + 1 && strentry_eq(&e[0], p, n))
        lua_rawgeti(L, d->cache_idx, (int)(set * 2 + 1));
    else if (e[1].len == n + 1 && strentry_eq(&e[1], p, n))
        lua_rawgeti(L, d->cache_idx, (int)(set * 2 + 2));
    else strcache_fill(L, d, p, n, set);
}

/* Push the state's string cache table and point d at the cache. */
static void strcache_enter(lua_State *L, cz_decoder *d) {
    lua_getfield(L, LUA_REGISTRYINDEX, STRCACHE_KEY);
    d->cache = (strcache *)lua_touserdata(L, -1);
    if (d->cache == NULL) {
        d->cache_idx = 0;
        return;
    }
    cz_getuservalue(L, -1);
    lua_remove(L, -2);
    d->cache_idx = lua_gettop(L);
}

/* The string whose opening quote is at s: push it and set *next past the
 * closing quote.  The common case (no escapes) pushes straight from the
 * input. */
static int scan_string(lua_State *L, cz_decoder *d, const unsigned char *s,
                       const unsigned char *end, const unsigned char **next, size_t at) {
    const unsigned char *q = cz_skip_plain(s + 1, end);
    int k = 1;
    if (q < end && *q == '"') { /* the usual case: plain text, then the quote */
        push_short(L, d, s + 1, (size_t)(q - s - 1), str_hash(s + 1, (size_t)(q - s - 1)));
        *next = q + 1;
        return TOK_OK;
    }
    if (q < end && *q == '\\') return string_slow(L, d, s, q, end, next, at);
    q = d->simd ? cz_skip_text(q, end, &k) : cz_skip_text_scalar(q, end, &k);
    if (q == end || k < 0) return TOK_MORE;
    if (k == 0) return fail_at(d, at + (size_t)(q - s), "invalid UTF-8 in string");
    if (*q == '"') {
        push_short(L, d, s + 1, (size_t)(q - s - 1), str_hash(s + 1, (size_t)(q - s - 1)));
        *next = q + 1;
        return TOK_OK;
    }
    if (*q == '\\') return string_slow(L, d, s, q, end, next, at);
    return fail_at(d, at + (size_t)(q - s), "control character in string");
}

/* The complete number token s[0..n): validate the JSON grammar, push an
 * exact integer when it is one that fits in 64 bits, else the correctly
 * rounded double (numconv.h). */
static int push_scanned(lua_State *L, cz_decoder *d, const cz_number *num_, const unsigned char *s, size_t n,
                        size_t at);

static int push_number(lua_State *L, cz_decoder *d, const unsigned char *s, size_t n, size_t at) {
    cz_number num;
    switch (cz_scan_number(s, n, &num)) {
    case CZ_NUM_OK: return push_scanned(L, d, &num, s, n, at);
    case CZ_NUM_LEADING_ZERO: return fail_at(d, at, "invalid number (leading zero)");
    case CZ_NUM_NO_FRACTION: return fail_at(d, at, "invalid number (digit expected after '.')");
    case CZ_NUM_NO_EXPONENT: return fail_at(d, at, "invalid number (digit expected in exponent)");
    default: return fail_at(d, at, "invalid number");
    }
}

/* Push the valid number token s[0..n) read into *num_. */
static int push_scanned(lua_State *L, cz_decoder *d, const cz_number *num_, const unsigned char *s, size_t n,
                        size_t at) {
    const cz_number num = *num_;
    double v;
    if (num.is_int) {
        /* q > 0: more than 19 digits, beyond 64 bits. */
        int exact = num.q == 0 && !num.inexact;
        if (d->big_strings && (!exact || num.w > (1ULL << 53))) {
            lua_pushlstring(L, (const char *)s, n);
            return TOK_OK;
        }
        if (exact && num.w <= 0x7FFFFFFFFFFFFFFFULL + (uint64_t)num.neg) {
            cz_pushint64(L, num.neg ? (long long)(0 - num.w) : (long long)num.w);
            return TOK_OK;
        }
    }
    v = cz_number_to_double(&num, s, n);
    if (isinf(v)) return fail_at(d, at, "number out of range");
    lua_pushnumber(L, (lua_Number)v);
    return TOK_OK;
}

static int push_literal(lua_State *L, cz_decoder *d, const unsigned char *s, size_t n, size_t at) {
    if (n == 4 && memcmp(s, "true", 4) == 0) lua_pushboolean(L, 1);
    else if (n == 5 && memcmp(s, "false", 5) == 0) lua_pushboolean(L, 0);
    else if (n == 4 && memcmp(s, "null", 4) == 0) cz_pushnull(L);
    else return fail_at(d, at, "invalid literal");
    return TOK_OK;
}

/* ---------------------------------------------------------------- parser */

/* Store frame f's pending values into its table, creating the table
 * (sized for them) first if needed.  f must be the innermost frame, so
 * its pending values are at the top of the stack, under `extra` (0 or 1:
 * an object's pending key) values that are kept; the stored ones are
 * removed. */
static void flush(lua_State *L, frame *f, int base, int mt_idx, int extra) {
    int slot = base + f->rel, i, k = f->pending;
    if (!f->has_table) {
        if (f->is_array) {
            lua_createtable(L, k, 0);
            lua_pushvalue(L, mt_idx);
            lua_setmetatable(L, -2);
        } else lua_createtable(L, 0, k);
        lua_replace(L, slot);
        f->has_table = 1;
    }
    if (f->is_array) {
        /* Each lua_rawseti pops the top value: store from the last. */
        for (i = k; i >= 1; i--) lua_rawseti(L, slot, (int)(f->n + i));
        f->n += k;
        f->pending = 0;
        return; /* arrays have no pending key: extra is 0 */
    }
    if (!f->maybe_dup && !extra) {
        /* No two pending keys are equal: store from the top. */
        for (i = k; i >= 1; i--) lua_rawset(L, slot);
    } else {
        for (i = 1; i <= 2 * k; i += 2) {
            lua_pushvalue(L, slot + i);
            lua_pushvalue(L, slot + i + 1);
            lua_rawset(L, slot);
        }
        if (!extra) lua_settop(L, slot);
        else if (k > 0) {
            /* The key kept on top becomes the first pending one (with no
             * pairs stored it is there already). */
            lua_replace(L, slot + 1);
            lua_settop(L, slot + 1);
        }
    }
    f->pending = 0;
    f->bloom = 0;
    f->maybe_dup = extra; /* the kept key's hash is gone: a duplicate may follow */
}

/* A key with hash h is about to become frame f's next pending pair.
 * Frame f's hashes live at keyh[rel + 1 ...]: below the stack slots of
 * any inner frame, so frames never share them. */
static inline void note_key(cz_decoder *d, frame *f, uint32_t h) {
    uint64_t bit = 1ULL << (h >> 26);
    uint32_t *kh = d->keyh + f->rel + 1;
    int i;
    kh[f->pending] = h;
    if (f->bloom & bit) {
        for (i = 0; i < f->pending; i++)
            if (kh[i] == h) { f->maybe_dup = 1; break; }
    }
    f->bloom |= bit;
}

/* An object key (opening quote at s) for the innermost frame: push it and
 * note it for duplicate detection.  Whole or carried, the same key takes
 * the same path, so a document gives the same tables however it was cut. */
static inline int scan_key(lua_State *L, cz_decoder *d, const unsigned char *s,
                    const unsigned char *end, const unsigned char **next, size_t at) {
    const unsigned char *q = cz_skip_plain(s + 1, end);
    frame *f = &d->frames[d->depth - 1];
    if (q < end && *q == '"') {
        uint32_t h = str_hash(s + 1, (size_t)(q - s - 1));
        push_short(L, d, s + 1, (size_t)(q - s - 1), h);
        note_key(d, f, h);
        *next = q + 1;
        return TOK_OK;
    }
    {
        /* Escapes or non-ASCII text (or an error): not hashed, so count it
         * as a possible duplicate.  (An incomplete key comes back here
         * whole from the carry.) */
        int r = scan_string(L, d, s, end, next, at);
        if (r != TOK_MORE) {
            f->maybe_dup = 1;
            d->keyh[f->rel + 1 + f->pending] = 0; /* defined, for later keys' comparisons */
        }
        return r;
    }
}

/* Open a container: a placeholder for its table is pushed. */
static int open_container(lua_State *L, cz_decoder *d, int is_array, size_t at, int base, int mt_idx) {
    frame *f;
    int top;
    if (d->depth >= d->max_depth) {
        char what[80];
        snprintf(what, sizeof what, "nesting deeper than max_depth (%d)", d->max_depth);
        return fail_at(d, at, what);
    }
    if (d->depth == d->cap) {
        int ncap = d->cap ? d->cap * 2 : 16;
        if (ncap > d->max_depth) ncap = d->max_depth;
        f = (frame *)cz_kalloc(d->keeper, d->frames, (size_t)ncap * sizeof *f);
        if (f == NULL) return fail_at(d, at, "out of memory");
        d->frames = f;
        d->cap = ncap;
    }
    top = lua_gettop(L) - base;
    if (d->depth > 0 && top > STACK_SOFT_LIMIT) {
        /* Keep the stack bounded: store the parent's values now. */
        frame *parent = &d->frames[d->depth - 1];
        flush(L, parent, base, mt_idx, !parent->is_array);
        top = lua_gettop(L) - base;
    }
    /* The stack stays far below Lua's limits (STACK_SOFT_LIMIT): a stack
     * that cannot grow is Lua out of memory. */
    if (!lua_checkstack(L, 2 * FLUSH_AT + 8)) {
        (void)at;
        d->oom = 1;
        snprintf(d->err, sizeof d->err, "not enough memory to decode the response body");
        return 0;
    }
    if (!is_array && top + FLUSH_AT + 2 > d->keyh_cap) {
        int ncap = (top + FLUSH_AT + 2) * 2;
        uint32_t *kh = (uint32_t *)cz_kalloc(d->keeper, d->keyh, (size_t)ncap * sizeof *kh);
        if (kh == NULL) return fail_at(d, at, "out of memory");
        d->keyh = kh;
        d->keyh_cap = ncap;
    }
    f = &d->frames[d->depth++];
    f->n = 0;
    f->pending = 0;
    f->is_array = is_array;
    f->has_table = 0;
    f->maybe_dup = 0;
    f->bloom = 0;
    lua_pushboolean(L, 0);
    f->rel = top + 1;
    d->state = is_array ? S_ARR_FIRST : S_OBJ_FIRST;
    return 1;
}

/* A value was just pushed: count it into its container (or finish the
 * document) and set the state that follows. */
static inline void value_done(lua_State *L, cz_decoder *d, int base, int mt_idx) {
    frame *f;
    if (d->depth == 0) {
        d->state = S_DONE;
        return;
    }
    f = &d->frames[d->depth - 1];
    d->state = f->is_array ? S_ARR_NEXT : S_OBJ_NEXT;
    if (++f->pending >= FLUSH_AT) flush(L, f, base, mt_idx, 0);
}

/* ']' or '}': the table takes its final values and becomes a value. */
static inline void close_container(lua_State *L, cz_decoder *d, int base, int mt_idx) {
    frame *f = &d->frames[d->depth - 1];
    flush(L, f, base, mt_idx, 0);
    d->depth--;
    value_done(L, d, base, mt_idx);
}

/* Start carrying the unfinished token s..end into the next chunk. */
static int start_carry(cz_decoder *d, int kind, const unsigned char *s,
                       const unsigned char *end, size_t at) {
    d->carry.len = 0;
    if (!cz_buf_add(&d->carry, s, (size_t)(end - s))) return fail_at(d, at, "out of memory");
    d->carry_kind = kind;
    d->carry_at = at;
    if (kind == C_STRING || kind == C_KEY) {
        /* Parity of the trailing backslash run (after the opening quote). */
        size_t i = d->carry.len;
        int esc = 0;
        while (i > 1 && d->carry.data[i - 1] == '\\') { esc ^= 1; i--; }
        d->carry_esc = esc;
    }
    return 1;
}

/* Complete the carried token with bytes from p; *used is how many of them
 * it took.  Returns TOK_MORE if the token still is not complete (all of
 * p..end taken), TOK_OK when the token's value was pushed. */
static int resume_carry(lua_State *L, cz_decoder *d, const unsigned char *p,
                        const unsigned char *end, int at_eof, size_t *used) {
    const unsigned char *q = p;
    const unsigned char *ts, *te, *next;
    int kind = d->carry_kind, r;
    if (kind == C_STRING || kind == C_KEY) {
        int esc = d->carry_esc;
        for (; q < end; q++) {
            if (esc) esc = 0;
            else if (*q == '\\') esc = 1;
            else if (*q == '"') break;
        }
        if (q == end) {
            d->carry_esc = esc;
            if (!cz_buf_add(&d->carry, p, (size_t)(q - p))) return fail_at(d, d->carry_at, "out of memory");
            *used = (size_t)(q - p);
            if (at_eof) {
                /* Report what decoding it in one piece would: the first
                 * bad byte or escape in it if any, else the missing end. */
                ts = (const unsigned char *)d->carry.data;
                if (scan_string(L, d, ts, ts + d->carry.len, &next, d->carry_at) == TOK_ERR) return TOK_ERR;
                return fail_at(d, d->offset + (size_t)(end - p), "unexpected end of input in string");
            }
            return TOK_MORE;
        }
        q++; /* the closing quote */
    } else {
        const unsigned char *cls = kind == C_NUMBER ? is_numchar : NULL;
        for (; q < end; q++) {
            if (cls ? !cls[*q] : (*q < 'a' || *q > 'z')) break;
        }
        if (q == end && !at_eof) {
            if (!cz_buf_add(&d->carry, p, (size_t)(q - p))) return fail_at(d, d->carry_at, "out of memory");
            *used = (size_t)(q - p);
            return TOK_MORE;
        }
    }
    if (!cz_buf_add(&d->carry, p, (size_t)(q - p))) return fail_at(d, d->carry_at, "out of memory");
    *used = (size_t)(q - p);
    if (kind == C_STRING || kind == C_KEY) {
        /* The string is complete (closing quote included).  Eight NUL
         * bytes after it let an escape cut short by that quote fail as it
         * does in one piece ("\u12" is an invalid escape, not more input
         * to wait for); the scan stops at the quote, so they are never
         * part of a value. */
        size_t len = d->carry.len;
        if (!cz_buf_add(&d->carry, "\0\0\0\0\0\0\0\0", 8)) return fail_at(d, d->carry_at, "out of memory");
        d->carry.len = len;
        te = (const unsigned char *)d->carry.data + len + 8;
    } else te = (const unsigned char *)d->carry.data + d->carry.len;
    ts = (const unsigned char *)d->carry.data;
    d->carry_kind = C_NONE;
    if (kind == C_STRING || kind == C_KEY) {
        r = kind == C_KEY ? scan_key(L, d, ts, te, &next, d->carry_at)
                          : scan_string(L, d, ts, te, &next, d->carry_at);
        if (r == TOK_MORE) return fail_at(d, d->carry_at, "invalid string");
    } else if (kind == C_NUMBER) r = push_number(L, d, ts, (size_t)(te - ts), d->carry_at);
    else r = push_literal(L, d, ts, (size_t)(te - ts), d->carry_at);
    return r;
}

/* Parse p[0..n).  Stack: mt_idx holds array_mt; above it the parked
 * values of the open containers.  Returns 1, or 0 with d->err set.  When
 * at_eof, a complete document must result (its value left on top). */
static int parse(lua_State *L, cz_decoder *d, const unsigned char *p, size_t n,
                 int at_eof, int mt_idx) {
    const unsigned char *const start = p, *const end = p + n, *next;
    const int base = mt_idx;
    const size_t offset = d->offset; /* changes only at the end */
    size_t at;
    int r;
#define AT(ptr) (offset + (size_t)((ptr) - start))

    if (d->carry_kind != C_NONE) {
        int kind = d->carry_kind;
        size_t used = 0;
        r = resume_carry(L, d, p, end, at_eof, &used);
        p += used;
        if (r == TOK_ERR) return 0;
        if (r == TOK_OK) {
            if (kind == C_KEY) d->state = S_OBJ_COLON;
            else value_done(L, d, base, mt_idx);
        }
    }

    for (;;) {
        unsigned c;
        while (p < end && is_ws[*p]) p++;
        if (p == end) break;
        c = *p;
        at = AT(p);
        switch (d->state) {
        case S_ARR_FIRST:
            if (c == ']') { p++; close_container(L, d, base, mt_idx); goto after_value; }
            /* fallthrough */
        case S_VALUE:
        value:
            switch (c) {
            case '{':
                if (!open_container(L, d, 0, at, base, mt_idx)) return 0;
                p++;
                if (p < end && *p == '"') { at = AT(p); d->state = S_OBJ_KEY; goto key; }
                continue;
            case '[':
                if (!open_container(L, d, 1, at, base, mt_idx)) return 0;
                p++;
                if (p < end && !is_ws[*p] && *p != ']') { c = *p; at = AT(p); d->state = S_VALUE; goto value; }
                continue;
            case '"':
                r = scan_string(L, d, p, end, &next, at);
                if (r == TOK_OK) { p = next; value_done(L, d, base, mt_idx); goto after_value; }
                if (r == TOK_ERR) return 0;
                if (!start_carry(d, C_STRING, p, end, at)) return 0;
                p = end;
                continue;
            case 't': case 'f': case 'n': {
                const unsigned char *q = p;
                while (q < end && *q >= 'a' && *q <= 'z') q++;
                if (q == end && !at_eof) {
                    if (!start_carry(d, C_LITERAL, p, end, at)) return 0;
                    p = end;
                    continue;
                }
                if (!push_literal(L, d, p, (size_t)(q - p), at)) return 0;
                p = q;
                value_done(L, d, base, mt_idx);
                goto after_value;
            }
            default:
                if (c == '-' || (c >= '0' && c <= '9')) {
                    /* A valid number followed by a byte that cannot be
                     * part of a token is pushed from one reading; all
                     * else takes the token up to the last number byte
                     * and judges it whole, as a carried one would be. */
                    cz_number num;
                    int err;
                    const unsigned char *q = cz_read_number(p, end, &num, &err);
                    if (err == CZ_NUM_OK && (q < end ? !is_numchar[*q] : at_eof)) {
                        if (!push_scanned(L, d, &num, p, (size_t)(q - p), at)) return 0;
                        p = q;
                        value_done(L, d, base, mt_idx);
                        goto after_value;
                    }
                    q = p + 1;
                    while (q < end && is_numchar[*q]) q++;
                    if (q == end && !at_eof) {
                        if (!start_carry(d, C_NUMBER, p, end, at)) return 0;
                        p = end;
                        continue;
                    }
                    if (!push_number(L, d, p, (size_t)(q - p), at)) return 0;
                    p = q;
                    value_done(L, d, base, mt_idx);
                    goto after_value;
                }
                return fail_char(d, at, (unsigned char)c, "a value");
            }
        case S_ARR_NEXT:
            if (c == ',') {
                p++;
                d->state = S_VALUE;
                if (p < end && !is_ws[*p]) { c = *p; at = AT(p); goto value; }
                continue;
            }
            if (c == ']') { p++; close_container(L, d, base, mt_idx); goto after_value; }
            return fail_char(d, at, (unsigned char)c, "',' or ']'");
        case S_OBJ_FIRST:
            if (c == '}') { p++; close_container(L, d, base, mt_idx); goto after_value; }
            /* fallthrough */
        case S_OBJ_KEY:
            if (c != '"') return fail_char(d, at, (unsigned char)c, "a string key");
        key:
            r = scan_key(L, d, p, end, &next, at);
            if (r == TOK_OK) {
                p = next;
                if (p < end && *p == ':') {
                    /* The usual "key":value, without a trip round the loop. */
                    p++;
                    d->state = S_VALUE;
                    if (p < end && !is_ws[*p]) { c = *p; at = AT(p); goto value; }
                    continue;
                }
                d->state = S_OBJ_COLON;
                continue;
            }
            if (r == TOK_ERR) return 0;
            if (!start_carry(d, C_KEY, p, end, at)) return 0;
            p = end;
            continue;
        case S_OBJ_COLON:
            if (c != ':') return fail_char(d, at, (unsigned char)c, "':'");
            p++;
            d->state = S_VALUE;
            if (p < end && !is_ws[*p]) { c = *p; at = AT(p); goto value; }
            continue;
        case S_OBJ_NEXT:
            if (c == ',') {
                p++;
                d->state = S_OBJ_KEY;
                if (p < end && *p == '"') { at = AT(p); goto key; }
                continue;
            }
            if (c == '}') { p++; close_container(L, d, base, mt_idx); goto after_value; }
            return fail_char(d, at, (unsigned char)c, "',' or '}'");
        default: /* S_DONE */
            return fail_char(d, at, (unsigned char)c, "end of input after the document");
        }
    after_value:
        /* A value just ended inside a container (state S_OBJ_NEXT or
         * S_ARR_NEXT): take the usual ',' + next token or the closing
         * bracket without a trip round the loop. */
        if (d->depth > 0 && p < end) {
            c = *p;
            if (c == ',') {
                if (d->state == S_OBJ_NEXT) {
                    if (end - p >= 2 && p[1] == '"') { p++; at = AT(p); d->state = S_OBJ_KEY; goto key; }
                } else if (end - p >= 2 && !is_ws[p[1]]) {
                    p++; c = *p; at = AT(p); d->state = S_VALUE; goto value;
                }
            } else if (c == (d->state == S_OBJ_NEXT ? '}' : ']')) {
                p++;
                close_container(L, d, base, mt_idx);
                goto after_value;
            }
        }
    }
    d->offset += n;
    if (at_eof && d->state != S_DONE)
        return fail_at(d, d->offset, d->carry_kind == C_STRING || d->carry_kind == C_KEY
                                         ? "unexpected end of input in string"
                                         : d->depth == 0 && d->state == S_VALUE && d->carry_kind == C_NONE
                                         ? "empty document" : "unexpected end of input (truncated document)");
    return 1;
#undef AT
}

/* ------------------------------------------------------------ lifecycle */

static void decoder_reset(cz_decoder *d, int max_depth) {
    memset(d, 0, sizeof *d);
    d->max_depth = max_depth;
    d->state = S_VALUE;
#if defined(CZ_TEXT_SSSE3)
    d->simd = cz_have_ssse3();
#endif
}

static int feed_protected(lua_State *L);

/* A decoder without streaming state: json.decode's, which parses one
 * string in one call. */
static cz_decoder *decoder_new(lua_State *L, int max_depth) {
    cz_decoder *d = (cz_decoder *)cz_newuserdata(L, sizeof *d);
    decoder_reset(d, max_depth);
    d->keeper = d->carry.keeper = d->scratch.keeper = cz_keeper_of(L);
    cz_setmetatable(L, DECODER_MT);
    return d;
}

/* A streaming decoder.  Its uservalue table parks values at 1..nsaved
 * and keeps the protected feed function at 0, so that feeding from a
 * curl callback allocates nothing before lua_pcall (on 5.1/LuaJIT,
 * pushing a C function does). */
cz_decoder *cz_decoder_push(lua_State *L, int max_depth) {
    cz_decoder *d = decoder_new(L, max_depth);
    lua_newtable(L);
    lua_pushcfunction(L, feed_protected);
    lua_rawseti(L, -2, 0);
    cz_setuservalue(L, -2);
    return d;
}

/* Make the decoder at idx ready for a new document, keeping its buffers. */
void cz_decoder_rewind(lua_State *L, int idx) {
    cz_decoder *d = (cz_decoder *)lua_touserdata(L, idx);
    frame *frames = d->frames;
    uint32_t *keyh = d->keyh;
    int cap = d->cap, keyh_cap = d->keyh_cap, max_depth = d->max_depth, big = d->big_strings, simd = d->simd, i;
    cz_buf carry = d->carry, scratch = d->scratch;
    cz_keeper *keeper = d->keeper;
    if (d->nsaved > 0) {
        cz_getuservalue(L, idx);
        for (i = 1; i <= d->nsaved; i++) {
            lua_pushnil(L);
            lua_rawseti(L, -2, i);
        }
        lua_pop(L, 1);
    }
    decoder_reset(d, max_depth);
    d->keeper = keeper;
    d->big_strings = big;
    d->simd = simd;
    d->frames = frames, d->cap = cap;
    d->keyh = keyh, d->keyh_cap = keyh_cap;
    carry.len = scratch.len = 0;
    d->carry = carry, d->scratch = scratch;
}

/* Buffers of one document beyond this size are freed when it is done. */
#define KEEP_BYTES (256 * 1024)
#define KEEP_FRAMES 256

/* After a document, successful or not: drop every value a failed decode
 * had parked (they become garbage now, not at the next document) and
 * free buffers grown past what an ordinary document needs. */
void cz_decoder_release(lua_State *L, int idx) {
    cz_decoder *d = (cz_decoder *)lua_touserdata(L, idx);
    cz_decoder_rewind(L, idx);
    if (d->carry.cap > KEEP_BYTES) cz_buf_free(&d->carry);
    if (d->scratch.cap > KEEP_BYTES) cz_buf_free(&d->scratch);
    if (d->cap > KEEP_FRAMES) {
        cz_kfree(d->keeper, d->frames);
        d->frames = NULL;
        d->cap = 0;
    }
    if (d->keyh_cap > KEEP_FRAMES * FLUSH_AT) {
        cz_kfree(d->keeper, d->keyh);
        d->keyh = NULL;
        d->keyh_cap = 0;
    }
}

const char *cz_decoder_error(cz_decoder *d) { return d->err; }
int cz_decoder_oom(const cz_decoder *d) { return d->oom; }
void cz_decoder_set_big_strings(cz_decoder *d, int on) { d->big_strings = on; }
/* A hook for fuzz/fuzz_decode.c (which declares it too; not part of
 * json.h's interface): on = 0 keeps d's strings on the scalar path, the
 * reference the fuzzer holds the SSSE3 paths to; on = 1 is the default
 * (SSSE3 where the CPU has it). */
void cz_decoder_set_simd(cz_decoder *d, int on);
void cz_decoder_set_simd(cz_decoder *d, int on) {
#if defined(CZ_TEXT_SSSE3)
    d->simd = on && cz_have_ssse3();
#else
    (void)d, (void)on;
#endif
}

void cz_decoder_copy_settings(cz_decoder *dst, const cz_decoder *src) {
    dst->max_depth = src->max_depth;
    dst->big_strings = src->big_strings;
}

int cz_decoder_opts(lua_State *L, int idx, int *big_strings) {
    int depth = CZ_DEFAULT_MAX_DEPTH;
    *big_strings = 0;
    if (lua_isnoneornil(L, idx)) return depth;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "max_depth");
    if (!lua_isnil(L, -1)) {
        lua_Number v;
        if (lua_type(L, -1) != LUA_TNUMBER) luaL_argerror(L, idx, "max_depth must be a positive integer");
        v = lua_tonumber(L, -1);
        if (!(v >= 1 && v <= 1000000 && v == (lua_Number)(int)v))
            luaL_argerror(L, idx, "max_depth must be an integer between 1 and 1000000");
        depth = (int)v;
    }
    lua_getfield(L, idx, "big_integers");
    if (!lua_isnil(L, -1)) {
        const char *mode = lua_tostring(L, -1);
        if (lua_type(L, -1) != LUA_TSTRING || (strcmp(mode, "string") != 0 && strcmp(mode, "number") != 0))
            luaL_argerror(L, idx, "big_integers must be \"number\" or \"string\"");
        *big_strings = strcmp(mode, "string") == 0;
    }
    lua_pop(L, 2);
    return depth;
}

static int decoder_gc(lua_State *L) {
    cz_decoder *d = (cz_decoder *)luaL_checkudata(L, 1, DECODER_MT);
    cz_kfree(d->keeper, d->frames);
    d->frames = NULL;
    d->cap = 0;
    cz_kfree(d->keeper, d->keyh);
    d->keyh = NULL;
    d->keyh_cap = 0;
    cz_buf_free(&d->carry);
    cz_buf_free(&d->scratch);
    return 0;
}

/* Restore the parked values above the current top, parse, park them
 * again.  ud_idx: absolute index of the decoder.  May raise (memory);
 * d->failed stays set if it does. */
static int run_feed(lua_State *L, int ud_idx, cz_decoder *d, const char *p, size_t n, int at_eof) {
    int saved_idx, mt_idx, base, i, count;
    if (d->failed) return 0;
    if (d->finished) {
        snprintf(d->err, sizeof d->err, "decoder already finished");
        return 0;
    }
    d->failed = 1;
    /* The parked values, plus the headroom open_container reserved for
     * the innermost container's pending values in an earlier call. */
    if (!lua_checkstack(L, d->nsaved + 2 * FLUSH_AT + 16)) { /* far below Lua's limit: memory */
        d->oom = 1;
        snprintf(d->err, sizeof d->err, "not enough memory to decode the response body");
        return 0;
    }
    cz_getuservalue(L, ud_idx);
    saved_idx = lua_gettop(L);
    strcache_enter(L, d);
    luaL_getmetatable(L, CZ_ARRAY_MT);
    mt_idx = base = lua_gettop(L);
    for (i = 1; i <= d->nsaved; i++) lua_rawgeti(L, saved_idx, i);
    if (!parse(L, d, (const unsigned char *)p, n, at_eof, mt_idx)) {
        lua_settop(L, saved_idx - 1);
        return 0;
    }
    count = lua_gettop(L) - base;
    for (i = count; i >= 1; i--) lua_rawseti(L, saved_idx, i);
    for (i = count + 1; i <= d->nsaved; i++) {
        lua_pushnil(L);
        lua_rawseti(L, saved_idx, i);
    }
    d->nsaved = count;
    if (at_eof) {
        /* The document's value is parked alone in slot 1: hand it out. */
        lua_rawgeti(L, saved_idx, 1);
        lua_pushnil(L);
        lua_rawseti(L, saved_idx, 1);
        d->nsaved = 0;
        d->finished = 1;
        lua_replace(L, saved_idx);
        lua_settop(L, saved_idx);
    } else lua_settop(L, saved_idx - 1);
    d->failed = 0;
    return 1;
}

/* ------------------------------------------------------------- C callers */

struct feed_call {
    cz_decoder *d;
    const char *p;
    size_t n;
    int at_eof;
    int ok;
};

/* Stack: [1] = light userdata feed_call, [2] = decoder. */
static int feed_protected(lua_State *L) {
    struct feed_call *fc = (struct feed_call *)lua_touserdata(L, 1);
    fc->ok = run_feed(L, 2, fc->d, fc->p, fc->n, fc->at_eof);
    return fc->ok && fc->at_eof ? 1 : 0;
}

static int call_protected(lua_State *L, int dec_idx, const char *p, size_t n, int at_eof) {
    cz_decoder *d = (cz_decoder *)lua_touserdata(L, dec_idx);
    struct feed_call fc;
    int status;
    fc.d = d, fc.p = p, fc.n = n, fc.at_eof = at_eof, fc.ok = 0;
    if (!lua_checkstack(L, 4)) {
        snprintf(d->err, sizeof d->err, "Lua stack exhausted");
        d->failed = 1;
        return 0;
    }
    cz_getuservalue(L, dec_idx);
    lua_rawgeti(L, -1, 0);
    lua_remove(L, -2);
    lua_pushlightuserdata(L, &fc);
    lua_pushvalue(L, dec_idx);
    status = lua_pcall(L, 2, at_eof ? 1 : 0, 0);
    if (status != 0) {
        const char *msg = lua_tostring(L, -1);
        d->oom = status == LUA_ERRMEM;
        if (d->oom) snprintf(d->err, sizeof d->err, "not enough memory to decode the response body");
        else snprintf(d->err, sizeof d->err, "%s", msg ? msg : "error while decoding");
        d->failed = 1;
        lua_pop(L, 1);
        return 0;
    }
    if (at_eof && !fc.ok) lua_pop(L, 1);
    return fc.ok;
}

int cz_decoder_feed_raw(lua_State *L, int dec_idx, const char *p, size_t n) {
    return call_protected(L, dec_idx, p, n, 0);
}

int cz_decoder_finish_raw(lua_State *L, int dec_idx) {
    return call_protected(L, dec_idx, "", 0, 1);
}

/* ------------------------------------------------------------ Lua API */

/* decode(str [, opts]) -> value.  Parses in place on this stack. */
int cz_json_decode(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int big, max_depth = cz_decoder_opts(L, 2, &big);
    cz_decoder *d;
    int ud_idx;
    lua_settop(L, 2);
    d = decoder_new(L, max_depth); /* owns the buffers; never fed again */
    d->big_strings = big;
    ud_idx = lua_gettop(L);
    strcache_enter(L, d);
    luaL_getmetatable(L, CZ_ARRAY_MT);
    if (!parse(L, d, (const unsigned char *)s, n, 1, lua_gettop(L)))
        return luaL_error(L, "cozmox.json.decode: %s", d->err);
    (void)ud_idx;
    return 1;
}

static cz_decoder *check_decoder(lua_State *L) {
    return (cz_decoder *)luaL_checkudata(L, 1, DECODER_MT);
}

int cz_json_decoder(lua_State *L) {
    int big, max_depth = cz_decoder_opts(L, 1, &big);
    cz_decoder_push(L, max_depth)->big_strings = big;
    return 1;
}

static int decoder_feed(lua_State *L) {
    cz_decoder *d = check_decoder(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    lua_settop(L, 2);
    if (!run_feed(L, 1, d, s, n, 0)) {
        lua_pushnil(L);
        lua_pushfstring(L, "cozmox.json: %s", d->err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int decoder_finish(lua_State *L) {
    cz_decoder *d = check_decoder(L);
    lua_settop(L, 1);
    if (!run_feed(L, 1, d, "", 0, 1)) {
        lua_pushnil(L);
        lua_pushfstring(L, "cozmox.json: %s", d->err);
        return 2;
    }
    return 1;
}

static int decoder_tostring(lua_State *L) {
    cz_decoder *d = check_decoder(L);
    lua_pushfstring(L, "cozmox.json.decoder (%s, %d bytes)",
                    d->failed ? "failed" : d->finished ? "finished" : "open", (int)d->offset);
    return 1;
}

static const luaL_Reg decoder_methods[] = {
    {"feed", decoder_feed},
    {"finish", decoder_finish},
    {NULL, NULL}};

static const luaL_Reg json_funcs[] = {
    {"encode", cz_json_encode},
    {"decode", cz_json_decode},
    {"decoder", cz_json_decoder},
    {NULL, NULL}};

void cz_json_export(lua_State *L) {
    cz_setfuncs(L, json_funcs, 0);
    cz_pushnull(L);
    lua_setfield(L, -2, "null");
    luaL_getmetatable(L, CZ_ARRAY_MT);
    lua_setfield(L, -2, "array_mt");
}

void cz_json_register(lua_State *L) {
    cz_keeper_register(L); /* before any decoder: finalized after them all */
    luaL_newmetatable(L, CZ_ARRAY_MT);
    lua_pop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, STRCACHE_KEY);
    if (lua_isnil(L, -1)) {
        strcache *c = (strcache *)cz_newuserdata(L, sizeof *c);
        memset(c, 0, sizeof *c);
        lua_createtable(L, 2 * STRCACHE_SETS, 0);
        cz_setuservalue(L, -2);
        lua_setfield(L, LUA_REGISTRYINDEX, STRCACHE_KEY);
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, DECODER_MT)) {
        cz_newlib(L, decoder_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, decoder_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, decoder_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}
