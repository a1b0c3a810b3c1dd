/*
 * jencode.c -- the JSON encoder: encode(value) -> string (json.h).
 *
 * One pass over the value, appending to a cz_buf that lives in a userdata
 * on the Lua stack, so any error raised half-way (bad value, bad key,
 * invalid UTF-8, cycle, depth, out of memory) leaks nothing.  Tables nest
 * by C recursion bounded by CZ_DEFAULT_MAX_DEPTH; each level keeps at most
 * a key and a value on the Lua stack.  All table access is raw.
 *
 * Mapping: tables with the CZ_ARRAY_MT metatable are arrays 1..rawlen
 * (nil -> null); other tables with exactly the keys 1..n are arrays, the
 * empty one is {}, the rest are objects with string keys.  Integers are
 * exact, floats shortest round-trip (numconv.h), light userdata NULL is
 * null, strings must be strict UTF-8 and are written raw except for '"',
 * '\\' and control characters.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "compat.h"
#include "buffer.h"
#include "numconv.h"
#include "textscan.h"
#include "json.h"

#define ENC_ERR "cozmox.json.encode: "

/* Fixed slot of cz_json_encode's frame holding the array metatable. */
#define IDX_ARRAY_MT 3

/* Longest indent string (or count of spaces) encode accepts. */
#define MAX_INDENT 32

/* enc_string's memo of short strings already written: 2^MEMO_BITS
 * entries, each a string's address and where its text is in the output. */
#define MEMO_BITS 9
#define MEMO_MAXLEN 30
#define MEMO_AFTER 32
typedef struct strmemo {
    const unsigned char *s;
    uint32_t at, len; /* text at or beyond 4 GiB is not remembered */
} strmemo;

/* A key of the object being written with sort_keys: its bytes and its
 * slot in the array of keys enc_object_sorted keeps on the stack.  That
 * array, not the object, keeps the string alive: pushing values can run a
 * collection, whose finalizers may remove members from the object. */
typedef struct keyref {
    const char *s;
    size_t n;
    int slot;
} keyref;

typedef struct enc {
    lua_State *L;
    cz_buf *b;
    cz_buf *keys;                               /* sort_keys: keyref stack, else NULL */
    int pretty;                                 /* indent given */
    int ssse3;                                  /* enc_string_fast may run */
    size_t memo_lim;                            /* memo strings shorter than this */
    int memo_wait;                              /* strings to go before the memo starts */
    strmemo memo[1 << MEMO_BITS];               /* enc_string */
    size_t indent_len;
    char indent[MAX_INDENT];
    int depth;                                  /* tables open right now */
    int path[CZ_DEFAULT_MAX_DEPTH];             /* their stack slots */
} enc;

static void enc_table(enc *e);

/* Short escapes of control characters; 0 means \u00XX. */
static const char ctrl_short[32] = {
    0, 0, 0, 0, 0, 0, 0, 0, 'b', 't', 'n', 0, 'f', 'r', 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0,   0,   0,   0, 0,   0,   0, 0,
};

static const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* --- errors: all raise, none return ------------------------------------ */

static void enc_nomem(enc *e) {
    lua_pushliteral(e->L, "not enough memory");
    lua_error(e->L);
}

static void enc_bad_value(enc *e) {
    lua_State *L = e->L;
    const char *tn = lua_type(L, -1) == LUA_TLIGHTUSERDATA ? "light userdata" : luaL_typename(L, -1);
    luaL_error(L, ENC_ERR "cannot encode value of type %s", tn);
}

static void enc_bad_key(enc *e, int type) {
    luaL_error(e->L, ENC_ERR "cannot encode table key of type %s (object keys must be strings)",
               lua_typename(e->L, type));
}

/* pos: 0-based offset of the first byte of the ill-formed sequence. */
static void enc_bad_utf8(enc *e, size_t pos) {
    char num[32];
    snprintf(num, sizeof num, "%zu", pos + 1);
    luaL_error(e->L, ENC_ERR "invalid UTF-8 in string at byte %s", num);
}

/* The depth limit was hit entering table t.  A table open twice on the
 * path (t included) means the data is cyclic, otherwise merely too deep.
 * Cycles are only looked for here, so acyclic data pays nothing, and any
 * cycle ends here: each lap through it adds at least one level. */
static void enc_too_deep(enc *e, int t) {
    lua_State *L = e->L;
    int i, j;
    for (i = 0; i < e->depth; i++) {
        if (lua_rawequal(L, e->path[i], t)) goto cycle;
        for (j = i + 1; j < e->depth; j++)
            if (lua_rawequal(L, e->path[i], e->path[j])) goto cycle;
    }
    luaL_error(e->L, ENC_ERR "nesting deeper than %d", CZ_DEFAULT_MAX_DEPTH);
cycle:
    luaL_error(e->L, ENC_ERR "cycle detected");
}

/* --- scalars ------------------------------------------------------------ */

static inline void enc_lit(enc *e, const char *s, size_t n) {
    if (!cz_buf_add(e->b, s, n)) enc_nomem(e);
}
#define ENC_LIT(e, s) enc_lit((e), "" s, sizeof(s) - 1)

static inline void enc_char(enc *e, char c) {
    if (!cz_buf_addc(e->b, c)) enc_nomem(e);
}

static void enc_integer(enc *e, long long v) {
    char tmp[24], *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) {
        const char *d = digit_pairs + 2 * (u % 100);
        u /= 100;
        *--p = d[1];
        *--p = d[0];
    }
    if (u >= 10) {
        *--p = digit_pairs[2 * u + 1];
        *--p = digit_pairs[2 * u];
    } else {
        *--p = (char)('0' + u);
    }
    if (v < 0) *--p = '-';
    enc_lit(e, p, (size_t)(tmp + sizeof tmp - p));
}

/* The float d.  Integral floats below 2^53 are written as digits plus
 * ".0", exactly what cz_format_double would give, a little faster. */
static CZ_NOINLINE void enc_float(enc *e, double d) {
    if (!isfinite(d))
        luaL_error(e->L, ENC_ERR "cannot encode NaN/inf (got %s)", isnan(d) ? "NaN" : d > 0 ? "inf" : "-inf");
    if (d > -9007199254740992.0 && d < 9007199254740992.0 && d != 0.0 && d == (double)(long long)d) {
        enc_integer(e, (long long)d);
        ENC_LIT(e, ".0");
        return;
    }
    if (!cz_buf_reserve(e->b, CZ_NUMBUF)) enc_nomem(e);
    e->b->len += cz_format_double(d, e->b->data + e->b->len);
}

/* Number at the top: integers inline, floats out of line. */
static inline void enc_number(enc *e) {
    long long i;
    if (cz_isinteger(e->L, -1, &i)) enc_integer(e, i);
    else enc_float(e, (double)lua_tonumber(e->L, -1));
}

/* s[0..n) as a quoted JSON string.  Runs of plain text (valid UTF-8
 * included; textscan.h) are copied with one memcpy.  Space invariant:
 * once `run` bytes are written, the buffer has room for n - run more plus
 * the closing quote, so only escapes need a check.  The reference for
 * enc_string_fast, and the one that reports invalid UTF-8. */
static void enc_string_scalar(enc *e, const unsigned char *s, size_t n) {
    cz_buf *b = e->b;
    const unsigned char *q = s, *run = s, *end = s + n;
    if (!cz_buf_reserve(b, n + 2)) enc_nomem(e);
    b->data[b->len++] = '"';
    for (;;) {
        unsigned c;
        char *w;
        int k = 1;
        q = cz_skip_text_scalar(q, end, &k);
        if (q == end) break;
        c = *q;
        if (c >= 0x80) enc_bad_utf8(e, (size_t)(q - s)); /* k <= 0: invalid or cut short */
        memcpy(b->data + b->len, run, (size_t)(q - run));
        b->len += (size_t)(q - run);
        if (!cz_buf_reserve(b, (size_t)(end - q) + 6)) enc_nomem(e);
        w = b->data + b->len;
        w[0] = '\\';
        if (c == '"' || c == '\\') {
            w[1] = (char)c;
            b->len += 2;
        } else if (ctrl_short[c]) {
            w[1] = ctrl_short[c];
            b->len += 2;
        } else {
            w[1] = 'u', w[2] = '0', w[3] = '0';
            w[4] = "0123456789abcdef"[c >> 4];
            w[5] = "0123456789abcdef"[c & 15];
            b->len += 6;
        }
        run = ++q;
    }
    memcpy(b->data + b->len, run, (size_t)(end - run));
    b->len += (size_t)(end - run);
    b->data[b->len++] = '"';
}

#if defined(CZ_TEXT_SSSE3)
/* enc_string with SSSE3: sixteen bytes at a time are stored to the
 * output unconditionally, then scanned for the next byte to escape and
 * checked as UTF-8 (textscan.h); the last < 16 bytes go through a
 * zero-padded copy, whose padding ends the text like a control
 * character would (so a sequence cut by the end of the string is an
 * error).  Returns 0, having written nothing, if the string holds
 * invalid UTF-8: enc_string_scalar then says where.  Space: 16 bytes of
 * slack beyond enc_string_scalar's invariant, for the last block. */
/* The lanes of v that are not plain ASCII text: '"', '\\', controls, and
 * (the signed compare with 0x20) every byte above 0x7f. */
static inline CZ_SSSE3 __m128i not_plain_ascii(__m128i v) {
    return _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                        _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
}

static CZ_NOINLINE CZ_SSSE3 int enc_string_fast(enc *e, const unsigned char *s, size_t n) {
    /* idx16 + 16 - m: the shuffle moving lanes 16 - m.. down to 0.., zeros above. */
    static const unsigned char idx16[32] = {
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
    const __m128i zero = _mm_setzero_si128();
    cz_buf *b = e->b;
    const unsigned char *q = s, *const end = s + n;
    __m128i prev = zero, err = zero;
    unsigned prev_hi = 0; /* high bytes in prev */
    size_t mark = b->len;
    char *o;
    if (!cz_buf_reserve(b, n + 2 + 16)) enc_nomem(e);
    o = b->data + b->len;
    *o++ = '"';
    if (n <= 32) {
        /* Up to 32 bytes of plain ASCII text: one block, or two
         * overlapping ones, loaded, checked and stored. */
        if (n < 16) {
            const __m128i v = cz_load_short(s, n);
            unsigned stop = (unsigned)_mm_movemask_epi8(not_plain_ascii(v));
            if ((stop & ((1u << n) - 1)) == 0) {
                _mm_storeu_si128((__m128i *)(void *)o, v);
                o[n] = '"';
                b->len = (size_t)(o + n + 1 - b->data);
                return 1;
            }
        } else {
            const __m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)s);
            const __m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(end - 16));
            if (_mm_movemask_epi8(_mm_or_si128(not_plain_ascii(v0), not_plain_ascii(v1))) == 0) {
                _mm_storeu_si128((__m128i *)(void *)o, v0);
                _mm_storeu_si128((__m128i *)(void *)(o + n - 16), v1);
                o[n] = '"';
                b->len = (size_t)(o + n + 1 - b->data);
                return 1;
            }
        }
    }
    while (q < end) {
        __m128i v;
        unsigned stop, c;
        int k;
        if (end - q >= 16) v = _mm_loadu_si128((const __m128i *)(const void *)q);
        else if (n >= 16) /* the last 16 bytes of the string, moved down */
            v = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(end - 16)),
                                 _mm_loadu_si128((const __m128i *)(const void *)(idx16 + 16 - (end - q))));
        else v = cz_load_short(q, (size_t)(end - q));
        _mm_storeu_si128((__m128i *)(void *)o, v);
        stop = cz_text_block(v, &prev, &prev_hi, &err);
        if (stop == 0) {
            q += 16, o += 16;
            continue;
        }
        k = __builtin_ctz(stop);
        q += k, o += k;
        if (q >= end) break; /* the padding */
        if ((size_t)(b->data + b->cap - o) < (size_t)(end - q) + 6 + 16 + 1) {
            b->len = (size_t)(o - b->data);
            if (!cz_buf_grow(b, (size_t)(end - q) + 6 + 16 + 1)) enc_nomem(e);
            o = b->data + b->len;
        }
        c = *q++;
        o[0] = '\\';
        if (c == '"' || c == '\\') {
            o[1] = (char)c;
            o += 2;
        } else if (ctrl_short[c]) {
            o[1] = ctrl_short[c];
            o += 2;
        } else {
            o[1] = 'u', o[2] = '0', o[3] = '0';
            o[4] = "0123456789abcdef"[c >> 4];
            o[5] = "0123456789abcdef"[c & 15];
            o += 6;
        }
    }
    /* A sequence the last full block left open is cut by the end. */
    if (prev_hi != 0) err = _mm_or_si128(err, cz_utf8_check16(zero, prev));
    if (cz_nonzero16(err)) {
        b->len = mark;
        return 0;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return 1;
}
#endif

static inline void enc_string_any(enc *e, const unsigned char *s, size_t n) {
#if defined(CZ_TEXT_SSSE3)
    if (e->ssse3 && enc_string_fast(e, s, n)) return;
#endif
    enc_string_scalar(e, s, n);
}

/* The Lua string s[0..n) (a pointer lua_tolstring gave for a string) as
 * a quoted JSON string.  Short strings repeat (keys above all): the spot
 * in the output where one was last written is remembered by its address,
 * and a repeat is copied from there.  An address stands for the same
 * bytes while the memo is on: the value holds every string it reaches,
 * and nothing allocates Lua memory meanwhile, so no collection (whose
 * finalizers could change the value) runs.  sort_keys pushes a string per
 * member, so there the memo stays off (memo_lim 0).  It starts after the
 * first MEMO_AFTER strings, so small values never pay for clearing it.
 * Entries die with the encode call, and all of them when the output is
 * rewound. */
/* A string the memo does not take (memo off, or too long). */
static CZ_NOINLINE void enc_string_unmemo(enc *e, const unsigned char *s, size_t n) {
    if (e->memo_wait > 0 && --e->memo_wait == 0) {
        memset(e->memo, 0, sizeof e->memo);
        e->memo_lim = MEMO_MAXLEN + 1;
    }
    enc_string_any(e, s, n);
}

/* A string the memo takes but has not seen at this address: written,
 * then remembered in m. */
static CZ_NOINLINE void enc_string_miss(enc *e, const unsigned char *s, size_t n, strmemo *m) {
    cz_buf *b = e->b;
    size_t at = b->len;
    enc_string_any(e, s, n);
    /* Escapes can make the text longer than the 32 bytes copied. */
    if (b->len - at <= 32 && at <= UINT32_MAX) {
        m->s = s;
        m->at = (uint32_t)at;
        m->len = (uint32_t)(b->len - at);
    }
}

/* The memo entry for the string at s. */
static inline strmemo *memo_slot(enc *e, const unsigned char *s) {
    return &e->memo[((uintptr_t)s * 0x9E3779B97F4A7C15ULL) >> (64 - MEMO_BITS)];
}

/* m's text (at most MEMO_MAXLEN + 2 <= 32 bytes) copied to w, with room
 * for 32 there: two 16-byte moves, both loads first (source and
 * destination may be that close). */
static inline void memo_copy(const cz_buf *b, const strmemo *m, char *w) {
    char t0[16], t1[16];
    memcpy(t0, b->data + m->at, 16);
    memcpy(t1, b->data + m->at + 16, 16);
    memcpy(w, t0, 16);
    memcpy(w + 16, t1, 16);
}

static CZ_ALWAYS_INLINE void enc_string(enc *e, const unsigned char *s, size_t n) {
    cz_buf *b = e->b;
    strmemo *m;
    if (n >= e->memo_lim) {
        enc_string_unmemo(e, s, n);
        return;
    }
    m = memo_slot(e, s);
    if (m->s == s) {
        if (!cz_buf_reserve(b, 32)) enc_nomem(e);
        memo_copy(b, m, b->data + b->len);
        b->len += m->len;
        return;
    }
    enc_string_miss(e, s, n, m);
}

/* Value at the top; leaves the stack as it found it. */
static CZ_ALWAYS_INLINE void enc_value(enc *e) {
    lua_State *L = e->L;
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        enc_string(e, (const unsigned char *)s, n);
        break;
    }
    case LUA_TNUMBER:
        enc_number(e);
        break;
    case LUA_TTABLE:
        enc_table(e);
        break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, -1)) ENC_LIT(e, "true");
        else ENC_LIT(e, "false");
        break;
    case LUA_TNIL:
        ENC_LIT(e, "null");
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, -1) == NULL) {
            ENC_LIT(e, "null");
            break;
        }
        /* fall through */
    default:
        enc_bad_value(e);
    }
}

/* --- tables ------------------------------------------------------------- */

/* Pretty output: a newline and the indent of the current depth (the
 * members of a table are one level deeper than the table). */
static CZ_NOINLINE void enc_newline(enc *e, int level) {
    cz_buf *b = e->b;
    size_t need = 1 + (size_t)level * e->indent_len;
    char *w;
    int i;
    if (!cz_buf_reserve(b, need)) enc_nomem(e);
    w = b->data + b->len;
    *w++ = '\n';
    for (i = 0; i < level; i++, w += e->indent_len) memcpy(w, e->indent, e->indent_len);
    b->len += need;
}

/* Before member i (0-based) of a non-empty table, and (i < 0) before its
 * closing bracket. */
static inline void enc_sep(enc *e, int i) {
    if (i > 0) enc_char(e, ',');
    if (e->pretty) enc_newline(e, i < 0 ? e->depth - 1 : e->depth);
}

/* Elements 1..n of the table at t, missing ones as null.  Leaves the
 * stack as it found it (one slot used per element). */
static void enc_array(enc *e, int t, size_t n) {
    lua_State *L = e->L;
    size_t i;
    if (n == 0) {
        ENC_LIT(e, "[]");
        return;
    }
    enc_char(e, '[');
    for (i = 1; i <= n; i++) {
        enc_sep(e, i > 1);
        lua_rawgeti(L, t, i);
        enc_value(e);
        lua_pop(L, 1);
    }
    enc_sep(e, -1);
    enc_char(e, ']');
}

/* One member: the key s[0..n), then the value on top (popped). */
static inline void enc_member(enc *e, const char *k, size_t kl, int i) {
    const unsigned char *s = (const unsigned char *)k;
    cz_buf *b = e->b;
    if (!e->pretty && kl < e->memo_lim) {
        /* Compact output and a key the memo may hold: on a hit, the comma,
         * the key and the colon in one go (at most 1 + 32 + 1 bytes). */
        strmemo *m = memo_slot(e, s);
        if (m->s == s) {
            char *w;
            if (!cz_buf_reserve(b, 34)) enc_nomem(e);
            w = b->data + b->len;
            *w = ',';
            w += i > 0;
            memo_copy(b, m, w);
            w[m->len] = ':';
            b->len = (size_t)(w + m->len + 1 - b->data);
        } else {
            if (i > 0) enc_char(e, ',');
            enc_string_miss(e, s, kl, m);
            enc_char(e, ':');
        }
    } else {
        enc_sep(e, i);
        enc_string(e, s, kl);
        if (e->pretty) ENC_LIT(e, ": ");
        else enc_char(e, ':');
    }
    enc_value(e);
    lua_pop(e->L, 1);
}

static int keyref_cmp(const void *a, const void *b) {
    const keyref *x = (const keyref *)a, *y = (const keyref *)b;
    int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* The object at t (sort_keys), whose first key and value lua_next has
 * just pushed: every key is collected (and checked) into an array on the
 * stack first, then the members are written in byte-wise key order.  The
 * keys are pushed back from that array (no allocation, and the strings
 * stay reachable whatever a finalizer does to the object meanwhile); a
 * member a finalizer removed is written as null. */
static void enc_object_sorted(enc *e, int t) {
    lua_State *L = e->L;
    cz_buf *kb = e->keys;
    size_t base = kb->len, n = 0, i;
    int ka;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_insert(L, -2); /* the key stays on top for lua_next */
    ka = lua_gettop(L) - 1;
    do {
        keyref k;
        if (lua_type(L, -1) != LUA_TSTRING) enc_bad_key(e, lua_type(L, -1));
        if (n >= (size_t)INT_MAX) enc_nomem(e);
        k.slot = (int)++n;
        lua_pushvalue(L, -1);
        lua_rawseti(L, ka, k.slot);
        k.s = lua_tolstring(L, -1, &k.n);
        if (!cz_buf_add(kb, &k, sizeof k)) enc_nomem(e);
    } while (lua_next(L, t) && (lua_pop(L, 1), 1)); /* the key stays for lua_next */
    qsort(kb->data + base, n, sizeof(keyref), keyref_cmp);
    enc_char(e, '{');
    for (i = 0; i < n; i++) {
        /* Re-read: writing a member may grow (move) the key stack. */
        keyref k = ((const keyref *)(const void *)(kb->data + base))[i];
        lua_rawgeti(L, ka, k.slot);
        lua_rawget(L, t);
        enc_member(e, k.s, k.n, (int)i);
    }
    kb->len = base;
    lua_pop(L, 1); /* the keys */
    enc_sep(e, -1);
    enc_char(e, '}');
}

/* Plain table at t, nothing above it, whose first key (type first_type)
 * is not a string: an array if its keys are exactly 1..n, else an error
 * naming a non-string key's type. */
static void enc_array_checked(enc *e, int t, int first_type) {
    lua_State *L = e->L;
    long long k = 0, max = 0, count = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER || !cz_isinteger(L, -1, &k) || k < 1)
            enc_bad_key(e, first_type);
        count++;
        if (k > max) max = k;
    }
    if (count != max) enc_bad_key(e, LUA_TNUMBER);
    enc_array(e, t, (size_t)max);
}

/* Table at t with no array metatable; nothing above it on entry or exit.
 * A string first key means an object.  Otherwise it must be an array:
 * while lua_next yields the keys 1, 2, 3... in order (the usual case)
 * the elements are written straight away; any other order rewinds the
 * output and decides by a full pass over the keys.  Nothing on this path
 * (nor in enc_array, enc_table, enc_value) may allocate Lua memory:
 * enc_string's memo takes a string's address for its identity, which
 * holds only while no collection can run. */
static void enc_plain(enc *e, int t) {
    lua_State *L = e->L;
    size_t mark = e->b->len;
    lua_Number want = 1;
    int first_type;
    lua_pushnil(L);
    if (!lua_next(L, t)) {
        ENC_LIT(e, "{}");
        return;
    }
    first_type = lua_type(L, -2);
    if (first_type == LUA_TSTRING) {
        int i = 0;
        if (e->keys) {
            enc_object_sorted(e, t);
            return;
        }
        enc_char(e, '{');
        for (;;) { /* the first key's type is known */
            size_t kl;
            const char *k = lua_tolstring(L, -2, &kl);
            enc_member(e, k, kl, i++);
            if (!lua_next(L, t)) break;
            if (lua_type(L, -2) != LUA_TSTRING) enc_bad_key(e, lua_type(L, -2));
        }
        enc_sep(e, -1);
        enc_char(e, '}');
        return;
    }
    enc_char(e, '[');
    do {
        if (lua_type(L, -2) != LUA_TNUMBER || lua_tonumber(L, -2) != want) {
            lua_pop(L, 2);
            e->b->len = mark;
            if (e->memo_lim) memset(e->memo, 0, sizeof e->memo); /* text past mark is gone */
            enc_array_checked(e, t, first_type);
            return;
        }
        enc_sep(e, want > 1);
        enc_value(e);
        lua_pop(L, 1);
        want += 1;
    } while (lua_next(L, t));
    enc_sep(e, -1);
    enc_char(e, ']');
}

/* Table at the top; leaves the stack as it found it.  Counts depth and
 * records the table's slot on the path for enc_too_deep (every table on
 * the path stays in its slot while it is written).  A level takes at
 * most 3 slots above its table: room is made for 8 levels at a time. */
static CZ_NOINLINE void enc_table(enc *e) {
    lua_State *L = e->L;
    int t = lua_gettop(L);
    if (e->depth == CZ_DEFAULT_MAX_DEPTH) enc_too_deep(e, t);
    if ((e->depth & 7) == 0) luaL_checkstack(L, 3 * 8, ENC_ERR "Lua stack exhausted");
    e->path[e->depth++] = t;
    if (lua_getmetatable(L, t)) {
        int is_array = lua_rawequal(L, -1, IDX_ARRAY_MT);
        lua_pop(L, 1);
        if (is_array) {
            enc_array(e, t, lua_rawlen(L, t));
            e->depth--;
            return;
        }
    }
    enc_plain(e, t);
    e->depth--;
}

/* Read encode's options table at 2 (nil: defaults) into e; returns
 * sort_keys.  Raises bad argument #2 for anything it does not know. */
static int enc_options(lua_State *L, enc *e) {
    int sort = 0;
    e->pretty = 0, e->indent_len = 0;
    if (lua_isnoneornil(L, 2)) return 0;
    if (lua_type(L, 2) != LUA_TTABLE) luaL_argerror(L, 2, "options table expected");
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int t = lua_type(L, -1);
        if (k && strcmp(k, "sort_keys") == 0) {
            if (t != LUA_TBOOLEAN) luaL_argerror(L, 2, "sort_keys must be a boolean");
            sort = lua_toboolean(L, -1);
        } else if (k && strcmp(k, "indent") == 0) {
            if (t == LUA_TNUMBER) {
                lua_Number n = lua_tonumber(L, -1);
                if (!(n >= 0 && n <= MAX_INDENT && n == (lua_Number)(int)n))
                    luaL_argerror(L, 2, "indent must be an integer from 0 to 32 or a string of spaces and tabs");
                e->indent_len = (size_t)n;
                memset(e->indent, ' ', e->indent_len);
                e->pretty = 1;
            } else if (t == LUA_TSTRING) {
                size_t n, i;
                const char *str = lua_tolstring(L, -1, &n);
                for (i = 0; i < n && (str[i] == ' ' || str[i] == '\t'); i++) {}
                if (i < n || n > MAX_INDENT)
                    luaL_argerror(L, 2, "indent must be an integer from 0 to 32 or a string of spaces and tabs");
                memcpy(e->indent, str, n);
                e->indent_len = n;
                e->pretty = 1;
            } else if (t != LUA_TBOOLEAN || lua_toboolean(L, -1)) {
                luaL_argerror(L, 2, "indent must be an integer from 0 to 32 or a string of spaces and tabs");
            }
        } else {
            lua_pushfstring(L, "unknown option '%s'", k ? k : luaL_typename(L, -2));
            luaL_argerror(L, 2, lua_tostring(L, -1));
        }
        lua_pop(L, 1);
    }
    return sort;
}

/* encode(value [, opts]) -> string.  Frame: 1 the value, 2 the options,
 * 3 the array metatable (IDX_ARRAY_MT, nil if unregistered), 4 the
 * buffer userdata, 5 (sort_keys) the key stack's userdata, then the value
 * again as the top for enc_value.  The buffers are freed eagerly once the
 * result string exists; their __gc covers every error path. */
int cz_json_encode(lua_State *L) {
    enc e;
    int sort;
    luaL_checkany(L, 1);
    lua_settop(L, 2);
    e.L = L;
    sort = enc_options(L, &e);
    luaL_getmetatable(L, CZ_ARRAY_MT);
    e.b = cz_buf_push(L);
    e.keys = sort ? cz_buf_push(L) : NULL;
    e.depth = 0;
    e.memo_lim = 0;
    e.memo_wait = sort ? 0 : MEMO_AFTER;
#if defined(CZ_TEXT_SSSE3)
    e.ssse3 = cz_have_ssse3();
#else
    e.ssse3 = 0;
#endif
    lua_pushvalue(L, 1);
    enc_value(&e);
    lua_pushlstring(L, e.b->data, e.b->len);
    cz_buf_free(e.b);
    if (e.keys) cz_buf_free(e.keys);
    return 1;
}
