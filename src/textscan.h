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
 * invalid UTF-8, or (with *k set to -1) a sequence cut by `end`. */
static inline const unsigned char *cz_skip_text(const unsigned char *q, const unsigned char *end, int *k) {
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

#endif
