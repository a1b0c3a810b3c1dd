/*
 * textscan.h -- finding the end of plain text in JSON strings, shared by
 * the decoder (jdecode.c) and the encoder (jencode.c).
 *
 * Plain text is every byte that a JSON string holds as is: not '"', not
 * '\\', not a control character (< 0x20), and bytes >= 0x80 only as part
 * of a valid UTF-8 sequence (no overlong forms, no UTF-16 surrogates,
 * nothing beyond U+10FFFF).
 */
#ifndef COZMOX_TEXTSCAN_H
#define COZMOX_TEXTSCAN_H

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Character classes inside a string: 0 plain ASCII, 1 '"', 2 '\\',
 * 3 control character, 4 first byte of a multi-byte sequence or invalid. */
#define CZ_R4(a) a, a, a, a
#define CZ_R16(a) CZ_R4(a), CZ_R4(a), CZ_R4(a), CZ_R4(a)
static const unsigned char cz_text_class[256] = {
    CZ_R16(3), CZ_R16(3),                                  /* 0x00-0x1f */
    0, 0, 1, CZ_R4(0), 0,                               /* 0x20-0x27 */
    CZ_R4(0), CZ_R4(0),                                    /* 0x28-0x2f */
    CZ_R16(0), CZ_R16(0),                                  /* 0x30-0x4f */
    CZ_R4(0), CZ_R4(0), CZ_R4(0), 2, 0, 0, 0,                 /* 0x50-0x5f */
    CZ_R16(0), CZ_R16(0),                                  /* 0x60-0x7f */
    CZ_R16(4), CZ_R16(4), CZ_R16(4), CZ_R16(4),                  /* 0x80-0xbf */
    CZ_R16(4), CZ_R16(4), CZ_R16(4), CZ_R16(4)};                 /* 0xc0-0xff */
#undef CZ_R4
#undef CZ_R16

/* Length (2..4) of the valid UTF-8 sequence at p, 0 if invalid, -1 if the
 * available bytes are a valid but incomplete prefix. */
static inline int cz_utf8_seq(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    int need, i;
    if (c < 0xC2) return 0;
    if (c < 0xE0) need = 2;
    else if (c < 0xF0) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;       /* overlong */
        else if (c == 0xED) hi = 0x9F;  /* UTF-16 surrogates */
    } else if (c < 0xF5) {
        need = 4;
        if (c == 0xF0) lo = 0x90;       /* overlong */
        else if (c == 0xF4) hi = 0x8F;  /* beyond U+10FFFF */
    } else return 0;
    for (i = 1; i < need; i++) {
        if (p + i >= end) return -1;
        if (p[i] < lo || p[i] > hi) return 0;
        lo = 0x80, hi = 0xBF;
    }
    return need;
}

/* First q in [q, end) that is not plain string text.
 * Eight bytes at a time: a SWAR test flags the bytes that are '"', '\\',
 * below 0x20 or above 0x7f.  Borrows can only flag bytes above a flagged
 * one, so the lowest flag is exact and says where the run ends. */
static inline uint64_t cz_load64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline const unsigned char *cz_skip_plain(const unsigned char *q, const unsigned char *end) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
#if defined(__SSE2__)
    /* Sixteen at a time: a signed compare with 0x20 flags both the control
     * characters and the bytes above 0x7f. */
    const __m128i dq = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), sp = _mm_set1_epi8(0x20);
    while (end - q >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, dq), _mm_cmpeq_epi8(v, bs)),
                                   _mm_cmplt_epi8(v, sp));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (mask != 0) return q + __builtin_ctz(mask);
        q += 16;
    }
#endif
    while (end - q >= 8) {
        uint64_t v = cz_load64(q), quote, bslash, ctl, hit;
        quote = v ^ (ones * '"');
        bslash = v ^ (ones * '\\');
        ctl = (v - ones * 0x20) & ~v;                 /* bytes < 0x20 */
        hit = (((quote - ones) & ~quote) | ((bslash - ones) & ~bslash) | ctl | v) & highs;
        if (hit != 0) {
#if defined(__GNUC__) && (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
            return q + (__builtin_ctzll(hit) >> 3);
#else
            break;
#endif
        }
        q += 8;
    }
    while (q < end && cz_text_class[*q] == 0) q++;
    return q;
}

/* First q in [q, end) that is neither plain text nor part of a valid
 * UTF-8 sequence: '"', '\\', a control character, or (with *k set to 0)
 * invalid UTF-8, or (with *k set to -1) a sequence cut by `end`.  q must
 * be the first byte of the text or follow an ASCII byte or a complete
 * sequence.  The reference: every faster path below gives its answer. */
static inline const unsigned char *cz_skip_text_scalar(const unsigned char *q, const unsigned char *end, int *k) {
    for (;;) {
        q = cz_skip_plain(q, end);
        if (q == end || *q < 0x80) return q;
        if ((*k = cz_utf8_seq(q, end)) <= 0) return q;
        q += *k;
        /* Runs of non-ASCII text (accents, CJK, emoji): stay here. */
        while (q < end && *q >= 0x80) {
            if ((*k = cz_utf8_seq(q, end)) <= 0) return q;
            q += *k;
        }
    }
}

/* --- SSSE3: sixteen bytes of UTF-8 checked at a time -----------------------
 * The lookup method of Keiser and Lemire ("Validating UTF-8 in less than
 * one instruction per byte", 2021): every ill-formed sequence shows in
 * the pair (byte before, byte) -- a lead without its continuation, a
 * continuation without a lead, an overlong, surrogate or too-large
 * second byte -- except a missing or extra third or fourth byte, which
 * shows from the bytes two and three back.  Three 16-entry tables,
 * indexed by the high nibble of the byte before, its low nibble and the
 * high nibble of the byte, each give a set of error kinds; their AND is
 * the pair's errors.  A byte two back >= 0xE0 or three back >= 0xF0 says
 * this one must be a continuation, which the pair tables flag (0x80,
 * continuation after continuation) as an error unless the XOR with that
 * requirement cancels it.  The result is 0 for every byte exactly when
 * the text (with the 15 bytes before it) is well-formed so far; a
 * sequence still open at the end is judged with the next block.
 *
 * Chosen at run time (__builtin_cpu_supports reads what the C runtime
 * found at load; nothing here is written), with the scalar path above as
 * the answer whenever a block holds an error, and for the last < 16
 * bytes, so that positions and error kinds stay those of the scalar
 * path. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(CZ_NO_SSSE3)
#define CZ_TEXT_SSSE3 1
#include <tmmintrin.h>

#define CZ_SSSE3 __attribute__((target("ssse3")))

static inline int cz_have_ssse3(void) {
    return __builtin_cpu_supports("ssse3");
}

/* The error bits of the 16 bytes `in`, preceded by the 16 bytes `prev`. */
static inline CZ_SSSE3 __m128i cz_utf8_check16(__m128i in, __m128i prev) {
    /* Error kinds: 0x01 lead without continuation, 0x02 continuation
     * without lead, 0x04 overlong 3-byte, 0x08 beyond U+10FFFF, 0x10
     * surrogate, 0x20 overlong 2-byte, 0x40 overlong 4-byte or beyond
     * U+10FFFF (second byte 0x8_), 0x80 two continuations. */
    const __m128i by_prev_high = _mm_setr_epi8(
        0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0_______ */
        (char)0x80, (char)0x80, (char)0x80, (char)0x80, /* 10______ */
        0x21, 0x01, 0x15, 0x49);                        /* 1100, 1101, 1110, 1111 */
    const __m128i by_prev_low = _mm_setr_epi8(
        (char)0xE7, (char)0xA3, (char)0x83, (char)0x83, (char)0x8B, (char)0xCB, (char)0xCB, (char)0xCB,
        (char)0xCB, (char)0xCB, (char)0xCB, (char)0xCB, (char)0xCB, (char)0xDB, (char)0xCB, (char)0xCB);
    const __m128i by_high = _mm_setr_epi8(
        0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, /* ASCII */
        (char)0xE6, (char)0xAE, (char)0xBA, (char)0xBA, /* 1000, 1001, 101_ */
        0x01, 0x01, 0x01, 0x01);                        /* leads */
    const __m128i nib = _mm_set1_epi8(0x0F);
    __m128i p1 = _mm_alignr_epi8(in, prev, 15);
    __m128i p2 = _mm_alignr_epi8(in, prev, 14);
    __m128i p3 = _mm_alignr_epi8(in, prev, 13);
    __m128i pair = _mm_and_si128(
        _mm_and_si128(_mm_shuffle_epi8(by_prev_high, _mm_and_si128(_mm_srli_epi16(p1, 4), nib)),
                      _mm_shuffle_epi8(by_prev_low, _mm_and_si128(p1, nib))),
        _mm_shuffle_epi8(by_high, _mm_and_si128(_mm_srli_epi16(in, 4), nib)));
    __m128i must = _mm_or_si128(_mm_subs_epu8(p2, _mm_set1_epi8(0xE0 - 0x80)),
                                _mm_subs_epu8(p3, _mm_set1_epi8(0xF0 - 0x80)));
    return _mm_xor_si128(_mm_and_si128(must, _mm_set1_epi8((char)0x80)), pair);
}

/* The n < 16 bytes at p in the low lanes, zeros above, read without
 * touching a byte outside [p, p + n): two overlapping loads of 8 (or 4)
 * bytes, the second moved up into place by a byte shuffle. */
static const unsigned char cz_shift_lanes[32] = {
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* v's bytes moved up by s (0..16) lanes, zeros coming in. */
static inline CZ_SSSE3 __m128i cz_lanes_up(__m128i v, size_t s) {
    return _mm_shuffle_epi8(v, _mm_loadu_si128((const __m128i *)(const void *)(cz_shift_lanes + 16 - s)));
}

static inline CZ_SSSE3 __m128i cz_load_short(const unsigned char *p, size_t n) {
    uint32_t a, b;
    if (n >= 8)
        return _mm_or_si128(_mm_loadl_epi64((const __m128i *)(const void *)p),
                            cz_lanes_up(_mm_loadl_epi64((const __m128i *)(const void *)(p + n - 8)), n - 8));
    if (n >= 4) {
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        return _mm_or_si128(_mm_cvtsi32_si128((int)a), cz_lanes_up(_mm_cvtsi32_si128((int)b), n - 4));
    }
    if (n == 0) return _mm_setzero_si128();
    a = (uint32_t)p[0] | (uint32_t)p[n / 2] << (8 * (n / 2)) | (uint32_t)p[n - 1] << (8 * (n - 1));
    return _mm_cvtsi32_si128((int)a);
}

static inline CZ_SSSE3 int cz_nonzero16(__m128i v) {
    return _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) != 0xFFFF;
}

/* One block v of string text, following the block *prev (*prev_hi: its
 * bytes >= 0x80 as a mask; both 0 after a stop).  Returns the mask of
 * its stops ('"', '\\', control characters; 0: all of it is text) and
 * ORs into *err the UTF-8 errors of the bytes before the first stop,
 * which count the stop and all after it as ASCII, so a sequence cut
 * there is an error.  ASCII after ASCII is not checked at all. */
static inline CZ_SSSE3 unsigned cz_text_block(__m128i v, __m128i *prev, unsigned *prev_hi, __m128i *err) {
    const __m128i dq = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), sp = _mm_set1_epi8(0x20);
    const __m128i idx = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    unsigned hi = (unsigned)_mm_movemask_epi8(v);
    unsigned stop = (unsigned)_mm_movemask_epi8(_mm_or_si128(
                        _mm_or_si128(_mm_cmpeq_epi8(v, dq), _mm_cmpeq_epi8(v, bs)), _mm_cmplt_epi8(v, sp))) & ~hi;
    if (stop == 0) {
        if ((hi | *prev_hi) != 0) *err = _mm_or_si128(*err, cz_utf8_check16(v, *prev));
        *prev = v, *prev_hi = hi;
        return 0;
    }
    if (((hi & (stop - 1)) | *prev_hi) != 0) {
        __m128i before = _mm_cmpgt_epi8(_mm_set1_epi8((char)__builtin_ctz(stop)), idx);
        *err = _mm_or_si128(*err, cz_utf8_check16(_mm_and_si128(v, before), *prev));
    }
    *prev = _mm_setzero_si128(), *prev_hi = 0;
    return stop;
}

/* cz_skip_text for at least 16 bytes, with the conditions above. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static CZ_SSSE3 const unsigned char *cz_skip_text_ssse3(const unsigned char *q, const unsigned char *end, int *k) {
    const unsigned char *const q0 = q;
    __m128i prev = _mm_setzero_si128(), err = _mm_setzero_si128();
    unsigned prev_hi = 0, stop;
    int i;
    while (end - q >= 16) {
        stop = cz_text_block(_mm_loadu_si128((const __m128i *)(const void *)q), &prev, &prev_hi, &err);
        if (stop != 0) return cz_nonzero16(err) ? cz_skip_text_scalar(q0, end, k) : q + __builtin_ctz(stop);
        q += 16;
    }
    if (cz_nonzero16(err)) return cz_skip_text_scalar(q0, end, k);
    /* Valid so far; the scalar path takes the rest from the start of a
     * sequence the last block may have left open. */
    for (i = 1; i <= 3 && q - i >= q0; i++) {
        unsigned c = q[-i];
        if (c < 0x80) break;
        if (c >= 0xC0) {
            if ((c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2) > i) q -= i;
            break;
        }
    }
    return cz_skip_text_scalar(q, end, k);
}
#endif

static inline const unsigned char *cz_skip_text(const unsigned char *q, const unsigned char *end, int *k) {
#if defined(CZ_TEXT_SSSE3)
    if (end - q >= 16 && cz_have_ssse3()) return cz_skip_text_ssse3(q, end, k);
#endif
    return cz_skip_text_scalar(q, end, k);
}

#endif
