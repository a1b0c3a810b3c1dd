/*
 * numconv.h -- exact, locale-independent number conversion.
 *
 * No C library conversion is used (strtod/snprintf follow LC_NUMERIC and
 * call localeconv, which is not thread-safe): numconv.c converts both
 * ways itself, with '.' always, no allocation and no mutable state, so
 * Lua states may run in several threads at once.
 *
 *   text -> double   correctly rounded (round to nearest, ties to even):
 *                    Clinger's exact fast path, then Eisel-Lemire with a
 *                    128-bit table of powers of ten, and for what those
 *                    cannot decide an exact decimal (big-decimal) path.
 *   double -> text   the shortest digits that read back to the same
 *                    double, the closest to it if several (Schubfach),
 *                    in the fixed format described at cz_format_double.
 */
#ifndef COZMOX_NUMCONV_H
#define COZMOX_NUMCONV_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Longest text cz_format_double writes (25 bytes), rounded up; it
 * writes no terminating NUL. */
#define CZ_NUMBUF 32

/* A JSON number literal read by cz_scan_number: its value is
 * (neg ? -1 : 1) * w * 10^q exactly, unless `inexact`, when digits past
 * the first 19 significant ones were dropped (w holds those 19, and the
 * value is strictly between w * 10^q and (w + 1) * 10^q). */
typedef struct cz_number {
    uint64_t w;
    long long q;
    int neg;
    int inexact;
    int is_int; /* no fraction, no exponent */
} cz_number;

enum {
    CZ_NUM_OK = 0,
    CZ_NUM_BAD,          /* not a number at all, or junk after one */
    CZ_NUM_LEADING_ZERO, /* "01" */
    CZ_NUM_NO_FRACTION,  /* "1." */
    CZ_NUM_NO_EXPONENT   /* "1e" */
};

/* Exponents beyond this are clamped while reading (the value is 0 or
 * infinite long before; the clamp keeps q far from overflow). */
#define CZ_NUM_EXP_CLAMP 100000000

/* The value of 8 ASCII digits loaded little-endian (first digit in the
 * low byte): pairs, then quadruples, then all eight, by three multiplies;
 * no lane ever overflows into the next. */
static inline uint64_t cz_eight_value(uint64_t x) {
    x -= 0x3030303030303030ULL;
    x = (x * 10 + (x >> 8)) & 0x00FF00FF00FF00FFULL;
    x = (x * 100 + (x >> 16)) & 0x0000FFFF0000FFFFULL;
    return (x * 10000 + (x >> 32)) & 0xFFFFFFFFULL;
}

/* Trailing zero bits of x != 0. */
static inline int cz_ctz64(uint64_t x) {
#if defined(__GNUC__)
    return __builtin_ctzll(x);
#else
    int n = 0;
    while (!(x & 1)) x >>= 1, n++;
    return n;
#endif
}

/* The 0x80 bit of every byte of x (little-endian load) that is not an
 * ASCII digit: exact for the lowest such byte and all below it (a carry
 * can only reach bytes above a non-digit), which is all its users read. */
static inline uint64_t cz_nondigits(uint64_t x) {
    uint64_t y = ((x & 0xF0F0F0F0F0F0F0F0ULL) | (((x + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4)) ^
                 0x3333333333333333ULL;
    return (y | ((y & 0x7F7F7F7F7F7F7F7FULL) + 0x7F7F7F7F7F7F7F7FULL)) & 0x8080808080808080ULL;
}

/* The value of the k (1..7) digits in the low bytes of x (first digit in
 * the low byte; the bytes above them are anything): moved to the top,
 * zeros (leading zero digits) below, then combined as eight. */
static inline uint64_t cz_digits_value(uint64_t x, int k) {
    x = (x - 0x3030303030303030ULL) << (64 - 8 * k);
    x = (x * 10 + (x >> 8)) & 0x00FF00FF00FF00FFULL;
    x = (x * 100 + (x >> 16)) & 0x0000FFFF0000FFFFULL;
    return (x * 10000 + (x >> 32)) & 0xFFFFFFFFULL;
}

static const uint64_t cz_pow10_8[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};

static inline uint64_t cz_load8(const unsigned char *p) {
    uint64_t x;
    memcpy(&x, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

/* Read the JSON number grammar from p into *out, as far as it
 * goes: returns the end of the number read and sets *err to CZ_NUM_OK,
 * or sets *err to the first error (the pointer is then meaningless).
 * It stops at the first byte that cannot continue the number, which the
 * caller judges.  One pass, eight digits at a time where it can; the
 * decoder's hot path, so it lives here, inline. */
static inline const unsigned char *cz_read_number(const unsigned char *p, const unsigned char *end,
                                                  cz_number *out, int *err) {
    uint64_t w = 0;
    long long q = 0;
    int nd = 0, inexact = 0, is_int = 1;
    unsigned dg;
    out->neg = 0;
    *err = CZ_NUM_OK;
    if (p < end && *p == '-') out->neg = 1, p++;
    if (p == end || (dg = (unsigned)(*p - '0')) > 9) return *err = CZ_NUM_BAD, p;
    if (dg == 0) {
        p++;
        if (p < end && (unsigned)(*p - '0') <= 9) return *err = CZ_NUM_LEADING_ZERO, p;
    } else {
        /* Eight bytes at a time; a block that is not all digits ends
         * the run (its digits, if any, taken in one step). */
        while (end - p >= 8 && nd <= 11) {
            uint64_t x = cz_load8(p), bad = cz_nondigits(x);
            int k;
            if (bad == 0) {
                w = w * 100000000 + cz_eight_value(x), nd += 8, p += 8;
                continue;
            }
            if ((k = cz_ctz64(bad) >> 3) != 0) w = w * cz_pow10_8[k] + cz_digits_value(x, k), nd += k, p += k;
            break;
        }
        /* Up to 19 digits always fit; later ones only move the point. */
        for (; p < end && (dg = (unsigned)(*p - '0')) <= 9; p++) {
            if (nd < 19) w = w * 10 + dg, nd++;
            else q++, inexact |= dg != 0;
        }
    }
    if (p < end && *p == '.') {
        is_int = 0;
        p++;
        if (p == end || (unsigned)(*p - '0') > 9) return *err = CZ_NUM_NO_FRACTION, p;
        if (w == 0) /* leading zeros of the fraction only scale */
            while (p < end && *p == '0') p++, q--;
        while (end - p >= 8 && nd <= 11) {
            uint64_t x = cz_load8(p), bad = cz_nondigits(x);
            int k;
            if (bad == 0) {
                w = w * 100000000 + cz_eight_value(x), nd += 8, q -= 8, p += 8;
                continue;
            }
            if ((k = cz_ctz64(bad) >> 3) != 0)
                w = w * cz_pow10_8[k] + cz_digits_value(x, k), nd += k, q -= k, p += k;
            break;
        }
        for (; p < end && (dg = (unsigned)(*p - '0')) <= 9; p++) {
            if (nd < 19) w = w * 10 + dg, nd++, q--;
            else inexact |= dg != 0;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        long long e = 0;
        int eneg = 0;
        is_int = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p == end || (unsigned)(*p - '0') > 9) return *err = CZ_NUM_NO_EXPONENT, p;
        for (; p < end && (dg = (unsigned)(*p - '0')) <= 9; p++)
            if (e < CZ_NUM_EXP_CLAMP) e = e * 10 + dg;
        q += eneg ? -e : e;
    }
    out->w = w;
    out->q = q;
    out->inexact = inexact;
    out->is_int = is_int;
    return p;
}

/* Validate all of s[0..n) as one JSON number and read it into
 * *out; returns CZ_NUM_OK or the first error (CZ_NUM_*). */
static inline int cz_scan_number(const unsigned char *s, size_t n, cz_number *out) {
    int err;
    const unsigned char *e = cz_read_number(s, s + n, out, &err);
    return err != CZ_NUM_OK ? err : e != s + n ? CZ_NUM_BAD : CZ_NUM_OK;
}

/* The correctly rounded double of a number read by cz_scan_number from
 * s[0..n) (the text is read again only in the rare inexact or
 * undecidable cases).  Overflow gives +-inf, underflow +-0. */
double cz_number_to_double(const cz_number *num, const unsigned char *s, size_t n);

/* Both steps: the correctly rounded double of a valid JSON number
 * literal s[0..n). */
double cz_parse_double(const char *s, size_t n);

/* Write finite d as text (at most CZ_NUMBUF bytes, no NUL); returns the
 * length.  The format, stable across versions:
 *
 *   - the shortest decimal digits d1 d2 ... dn that read back to d bit
 *     for bit; of several such, the closest to d (ties: even last digit);
 *   - with X the decimal exponent of d1 (d = d1.d2...dn * 10^X): plain
 *     notation when -7 < X < 21, else d1[.d2...dn]e+X / e-X (exponent
 *     with its sign, no leading zeros) -- the layout of ECMAScript's
 *     Number::toString, i.e. of JSON.stringify;
 *   - plain integral values keep a ".0" (so they read back as floats):
 *     1.0, 100.0, 1e+21; zero is "0.0", negative zero "-0.0".
 *
 *   0.1  -> 0.1         1e-7  -> 1e-7        5e-324 -> 5e-324
 *   1e20 -> 100000000000000000000.0          1e21   -> 1e+21
 *   0.000001 -> 0.000001                     -65.613616999999977 -> -65.61361699999998
 */
size_t cz_format_double(double d, char *buf);

#endif
