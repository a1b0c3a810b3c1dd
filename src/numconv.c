/*
 * numconv.c -- exact, locale-independent number conversion (numconv.h).
 *
 * Decimal -> double: w * 10^q with w < 2^64 (the first 19 significant
 * digits) is
 *   1. exact in one IEEE operation when w <= 2^53 and |q| <= 22
 *      (Clinger's fast path: both operands exact, one rounding);
 *   2. else Eisel-Lemire: w normalised times the 128-bit truncated power
 *      of ten CZ_POW10[q] (numtab.h) gives the top 54 bits of the product
 *      and whether the bits below them could still change the rounding;
 *      it answers for nearly every input, and declines (returns 0) when
 *      the truncated product leaves the rounding open, for results that
 *      are subnormal and for overflow.  A literal with more than 19
 *      significant digits is answered when w and w + 1 (the value lies
 *      strictly between them) round to the same double;
 *   3. else the exact path: the literal's digits as a big decimal (at
 *      most DEC_DIGITS digits kept, the rest folded into a sticky
 *      "truncated" flag, which is exact: a halfway point between two
 *      doubles has at most 767 significant digits), scaled by powers of
 *      two until the 53 bits and the rounding are known (the "simple
 *      decimal conversion" of Go's strconv and Wuffs).  On the stack; no
 *      allocation.
 *
 * Double -> decimal: Schubfach (R. Giulietti, "The Schubfach way to
 * render doubles"): with v = c * 2^q and k = floor(log10(2^q)), the
 * rounding interval's end points and v itself scaled by 10^-k are
 * computed, rounded to odd, from g = floor(10^-k * 2^r) + 1 (derived from
 * the same table), which decides exactly which of the one or two
 * candidates with the fewest digits lies in the interval, and which is
 * the closest.  The digits are then laid out as cz_format_double says.
 *
 * Nothing here is mutable or global except constant tables.
 */
#include <float.h>
#include <string.h>
#include "numconv.h"
#include "numtab.h"

/* ----------------------------------------------------------- 64x64->128 */

#if defined(__SIZEOF_INT128__)
static inline uint64_t mul_hi(uint64_t a, uint64_t b, uint64_t *lo) {
    unsigned __int128 p = (unsigned __int128)a * b;
    *lo = (uint64_t)p;
    return (uint64_t)(p >> 64);
}
#else
static inline uint64_t mul_hi(uint64_t a, uint64_t b, uint64_t *lo) {
    uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;
    *lo = (mid << 32) | (uint32_t)p00;
    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}
#endif

static inline int clz64(uint64_t x) { /* x != 0 */
#if defined(__GNUC__)
    return __builtin_clzll(x);
#else
    int n = 0;
    while (!(x & 0x8000000000000000ULL)) x <<= 1, n++;
    return n;
#endif
}

static inline double from_bits(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static inline uint64_t to_bits(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

#define SIGN_BIT 0x8000000000000000ULL
#define MANT_MASK 0x000FFFFFFFFFFFFFULL
#define INF_BITS 0x7FF0000000000000ULL

/* floor(log2(10^j)) for |j| < 400 (proved by scripts/gen_numtab.py). */
#define FLOG2_POW10(j) ((int)(((long long)(j) * 217706) >> 16))

/* ------------------------------------------------------- Eisel-Lemire */

/* w * 10^q (w != 0, CZ_POW10_MIN <= q <= 308) as a double's bits in
 * *bits; 0 when it cannot decide, or the result is subnormal or
 * overflows (the exact path then answers). */
static int eisel_lemire(uint64_t w, int q, uint64_t *bits) {
    const uint64_t *t = CZ_POW10[q - CZ_POW10_MIN];
    int lz = clz64(w);
    uint64_t hi, lo, mant, msb;
    /* The result's biased exponent, before the product's top bit is known. */
    uint64_t e2 = (uint64_t)(FLOG2_POW10(q) + 64 + 1023 - lz);
    w <<= lz;
    hi = mul_hi(w, t[0], &lo);
    /* The table's low half and what it rounded off add less than w to
     * lo: that can only matter when a carry out of lo would reach the
     * 54 bits kept (the 9 bits below them all ones). */
    if ((hi & 0x1FF) == 0x1FF && lo + w < w) {
        uint64_t lo2, hi2 = mul_hi(w, t[1], &lo2);
        uint64_t mlo = lo + hi2, mhi = hi + (mlo < lo);
        if ((mhi & 0x1FF) == 0x1FF && mlo + 1 == 0 && lo2 + w < w) return 0;
        hi = mhi, lo = mlo;
    }
    msb = hi >> 63;
    mant = hi >> (msb + 9); /* 54 bits: the 53 kept and the rounding bit */
    e2 -= 1 ^ msb;
    /* Exactly halfway as far as the product shows, rounding to even would
     * go down, but the true value may lie just above: undecided. */
    if (lo == 0 && (hi & 0x1FF) == 0 && (mant & 3) == 1) return 0;
    mant += mant & 1;
    mant >>= 1;
    if (mant >> 53) mant >>= 1, e2++;
    if (e2 - 1 >= 0x7FE) return 0; /* subnormal (e2 <= 0) or overflow */
    *bits = e2 << 52 | (mant & MANT_MASK);
    return 1;
}

/* -------------------------------------------- exact big-decimal fallback */

/* A halfway point between doubles has at most 767 significant digits;
 * digits past DEC_DIGITS only ever make the value a little larger, which
 * `trunc` records. */
#define DEC_DIGITS 800
#define MAX_SHIFT 60 /* keeps digit * 2^shift + carry within 64 bits */

typedef struct decimal {
    int nd;    /* digits in d[] (no trailing zeros) */
    int dp;    /* value = 0.d[0]d[1]... * 10^dp */
    int trunc; /* nonzero digits were dropped after d[nd-1] */
    unsigned char d[DEC_DIGITS];
} decimal;

static void dec_trim(decimal *a) {
    while (a->nd > 0 && a->d[a->nd - 1] == 0) a->nd--;
    if (a->nd == 0) a->dp = 0;
}

/* a *= 2^k, 1 <= k <= MAX_SHIFT.  Digits are produced from the last one
 * up, each written `room` places further on than it was read (at most
 * the number of digits of 2^k more appear), then moved down. */
static void dec_lshift(decimal *a, int k) {
    int room = (k * 78) / 256 + 1; /* >= digits of 2^k (log10 2 < 78/256) */
    int r = a->nd, w = a->nd + room, i, start, stop;
    uint64_t n = 0;
    while (r > 0 || n > 0) {
        uint64_t quo, rem;
        if (r > 0) n += (uint64_t)a->d[--r] << k;
        quo = n / 10;
        rem = n - 10 * quo;
        w--;
        if (w < DEC_DIGITS) a->d[w] = (unsigned char)rem;
        else if (rem != 0) a->trunc = 1;
        n = quo;
    }
    start = w; /* the first digit; room - start new digits appeared */
    stop = a->nd + room < DEC_DIGITS ? a->nd + room : DEC_DIGITS;
    a->dp += room - start;
    a->nd = stop - start;
    for (i = 0; i < a->nd; i++) a->d[i] = a->d[start + i];
    dec_trim(a);
}

/* a /= 2^k, 1 <= k <= MAX_SHIFT. */
static void dec_rshift(decimal *a, int k) {
    int r = 0, w = 0;
    uint64_t n = 0, mask = ((uint64_t)1 << k) - 1;
    while ((n >> k) == 0) { /* enough leading digits for one quotient digit */
        if (r >= a->nd) {
            if (n == 0) {
                a->nd = 0, a->dp = 0;
                return;
            }
            while ((n >> k) == 0) n *= 10, r++;
            break;
        }
        n = n * 10 + a->d[r++];
    }
    a->dp -= r - 1;
    for (; r < a->nd; r++) {
        a->d[w++] = (unsigned char)(n >> k);
        n = (n & mask) * 10 + a->d[r];
    }
    while (n > 0) {
        unsigned dig = (unsigned)(n >> k);
        if (w < DEC_DIGITS) a->d[w++] = (unsigned char)dig;
        else if (dig != 0) a->trunc = 1;
        n = (n & mask) * 10;
    }
    a->nd = w;
    dec_trim(a);
}

static void dec_shift(decimal *a, int k) {
    for (; k > MAX_SHIFT; k -= MAX_SHIFT) dec_lshift(a, MAX_SHIFT);
    for (; k < -MAX_SHIFT; k += MAX_SHIFT) dec_rshift(a, MAX_SHIFT);
    if (k > 0) dec_lshift(a, k);
    else if (k < 0) dec_rshift(a, -k);
}

/* The integer part of a (which is < 2^54 here), rounded to nearest, ties
 * to even; trunc breaks a tie upwards. */
static uint64_t dec_round(const decimal *a) {
    uint64_t n = 0;
    int i, up;
    for (i = 0; i < a->dp; i++) n = n * 10 + (i < a->nd ? a->d[i] : 0);
    if (a->dp < 0 || a->dp >= a->nd) return n; /* < 0.1, or an integer */
    if (a->d[a->dp] != 5) up = a->d[a->dp] > 5;
    else up = a->dp + 1 < a->nd || a->trunc || (n & 1);
    return n + (uint64_t)up;
}

/* The literal s[0..n) (JSON grammar), exactly; bits of the result. */
static uint64_t decimal_bits(const unsigned char *s, size_t n) {
    /* Halving or doubling moves the decimal point by these many digits
     * at most: shifts that keep the value from overshooting [1/2, 1). */
    static const unsigned char step[] = {1, 3, 6, 9, 13, 16, 19, 23, 26};
    decimal a;
    const unsigned char *p = s, *end = s + n;
    uint64_t sign = 0, mant;
    long long dp = 0, digits = 0;
    int e2, point = 0;
    a.nd = 0, a.trunc = 0;
    if (p < end && *p == '-') sign = SIGN_BIT, p++;
    for (; p < end; p++) {
        unsigned c = *p;
        if (c == '.') {
            point = 1;
            dp = digits;
        } else if (c - '0' <= 9) {
            if (c == '0' && digits == 0) {
                if (point) dp--;
                continue;
            }
            digits++;
            if (a.nd < DEC_DIGITS) a.d[a.nd++] = (unsigned char)(c - '0');
            else if (c != '0') a.trunc = 1;
        } else break; /* the exponent */
    }
    if (!point) dp = digits;
    if (p < end) { /* 'e' or 'E' */
        long long e = 0;
        int eneg = 0;
        p++;
        if (*p == '+' || *p == '-') eneg = *p++ == '-';
        for (; p < end; p++)
            if (e < CZ_NUM_EXP_CLAMP) e = e * 10 + (*p - '0');
        dp += eneg ? -e : e;
    }
    dec_trim(&a);
    if (a.nd == 0 || dp < -330) return sign; /* 0, or far below 2^-1075 */
    if (dp > 310) return sign | INF_BITS;
    a.dp = (int)dp;
    /* Bring the value into [1/2, 1): value = a * 2^e2. */
    e2 = 0;
    while (a.dp > 0) {
        int k = a.dp < 9 ? step[a.dp] : 27;
        dec_shift(&a, -k);
        e2 += k;
    }
    while (a.dp < 0 || (a.dp == 0 && a.d[0] < 5)) {
        int k = -a.dp < 9 ? step[-a.dp] : 27;
        dec_shift(&a, k);
        e2 -= k;
    }
    e2--; /* value = 2a * 2^e2, 2a in [1, 2) */
    if (e2 < -1022) { /* subnormal: fewer bits */
        dec_shift(&a, e2 + 1022);
        e2 = -1022;
    }
    if (e2 > 1023) return sign | INF_BITS;
    dec_shift(&a, 53);
    mant = dec_round(&a); /* 2a * 2^52, rounded */
    if (mant == (uint64_t)1 << 53) {
        mant >>= 1;
        if (++e2 > 1023) return sign | INF_BITS;
    }
    if (!(mant >> 52)) return sign | mant; /* subnormal (or 0) */
    return sign | (uint64_t)(e2 + 1023) << 52 | (mant & MANT_MASK);
}

/* ------------------------------------------------------- decimal -> double */

static const double pow10_exact[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

double cz_number_to_double(const cz_number *num, const unsigned char *s, size_t n) {
    uint64_t w = num->w, sign = num->neg ? SIGN_BIT : 0, b1, b2;
    long long q = num->q;
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    /* Doubles are evaluated as doubles (no x87 excess precision). */
    if (!num->inexact && w <= ((uint64_t)1 << 53) && q >= -22 && q <= 22) {
        double d = (double)w;
        d = q < 0 ? d / pow10_exact[-q] : d * pow10_exact[q];
        return num->neg ? -d : d;
    }
#else
    (void)pow10_exact;
#endif
    if (w == 0 || q < CZ_POW10_MIN) return from_bits(sign); /* below 2^-1075 */
    if (q > 308) return from_bits(sign | INF_BITS);
    if (eisel_lemire(w, (int)q, &b1) &&
        (!num->inexact || (eisel_lemire(w + 1, (int)q, &b2) && b1 == b2)))
        return from_bits(sign | b1);
    return from_bits(decimal_bits(s, n));
}

double cz_parse_double(const char *s, size_t n) {
    cz_number num;
    cz_scan_number((const unsigned char *)s, n, &num);
    return cz_number_to_double(&num, (const unsigned char *)s, n);
}

/* ----------------------------------------------------- double -> decimal */

/* floor(log10(2^e)), floor(log10(3/4 * 2^e)), floor(log2(10^e)) for
 * |e| < 1200 (proved by scripts/gen_numtab.py). */
#define FLOG10_POW2(e) ((int)(((long long)(e) * 661971961083LL) >> 41))
#define FLOG10_3Q_POW2(e) ((int)(((long long)(e) * 661971961083LL - 274743187321LL) >> 41))
#define FLOG2_POW10_WIDE(e) ((int)(((long long)(e) * 913124641741LL) >> 38))

/* Schubfach's r_o'(cp * g / 2^127) (the paper's figure 8): with
 * g = g1 * 2^63 + g0 (63 bits each), the floor of the product's top part
 * with its last bit set when the part below is not zero, computed from
 * the high halves only -- the bits dropped are what g's +1 adds, which is
 * what keeps exact cases (ties) exact.  cp < 2^60. */
static inline uint64_t round_odd(uint64_t g1, uint64_t g0, uint64_t cp) {
    uint64_t x0, x1 = mul_hi(g0, cp, &x0);
    uint64_t y0, y1 = mul_hi(g1, cp, &y0);
    uint64_t z = (y0 >> 1) + x1;
    (void)x0;
    return (y1 + (z >> 63)) | (((z & 0x7FFFFFFFFFFFFFFFULL) + 0x7FFFFFFFFFFFFFFFULL) >> 63);
}

/* The shortest (then closest) decimal f * 10^*e10 that reads back to
 * v = c * 2^q (0 < c < 2^53). */
static uint64_t schubfach(int q, uint64_t c, int *e10) {
    const uint64_t *t;
    uint64_t g1, g0, glo, ghi, cb = c << 2, cbr = cb + 2, cbl, vb, vbl, vbr, s, sp;
    unsigned out = (unsigned)(c & 1);
    int k, h;
    if (c != ((uint64_t)1 << 52) || q == -1074) {
        cbl = cb - 2; /* the gap below v is as wide as the one above */
        k = FLOG10_POW2(q);
    } else {
        cbl = cb - 1; /* v a power of two: the gap below is half as wide */
        k = FLOG10_3Q_POW2(q);
    }
    h = q + FLOG2_POW10_WIDE(-k) + 2; /* 1..4 */
    /* g = floor(T / 4) + 1, T the truncated top 128 bits of 10^-k. */
    t = CZ_POW10[-k - CZ_POW10_MIN];
    glo = (t[1] >> 2 | t[0] << 62) + 1;
    ghi = (t[0] >> 2) + (glo == 0);
    g1 = ghi << 1 | glo >> 63;
    g0 = glo & 0x7FFFFFFFFFFFFFFFULL;
    vb = round_odd(g1, g0, cb << h);
    vbl = round_odd(g1, g0, cbl << h);
    vbr = round_odd(g1, g0, cbr << h);
    s = vb >> 2; /* floor(v * 10^-k) */
    if (s >= 10) {
        /* One digit fewer: the multiples of ten around s (the interval,
         * narrower than 10, holds at most one). */
        uint64_t sp10 = s / 10 * 10, tp10 = sp10 + 10;
        int upin = vbl + out <= sp10 << 2, wpin = (tp10 << 2) + out <= vbr;
        if (upin != wpin) {
            *e10 = k;
            return upin ? sp10 : tp10;
        }
    }
    {
        uint64_t tt = s + 1;
        int uin = vbl + out <= s << 2, win = (tt << 2) + out <= vbr;
        *e10 = k;
        if (uin != win) return uin ? s : tt;
        /* Both read back: the closer to v, ties to even. */
        sp = (s + tt) << 1;
        return (vb < sp || (vb == sp && (s & 1) == 0)) ? s : tt;
    }
}

static const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* The n digits of f (f < 10^n, no leading zero) at out[0..n). */
static void put_digits(uint64_t f, char *out, int n) {
    char *p = out + n;
    while (f >= 100) {
        const char *d = digit_pairs + 2 * (f % 100);
        f /= 100;
        *--p = d[1];
        *--p = d[0];
    }
    if (f >= 10) {
        *--p = digit_pairs[2 * f + 1];
        *--p = digit_pairs[2 * f];
    } else *--p = (char)('0' + f);
}

static int count_digits(uint64_t f) {
    int n = 1;
    while (f >= 10000) f /= 10000, n += 4;
    while (f >= 10) f /= 10, n++;
    return n;
}

size_t cz_format_double(double d, char *buf) {
    uint64_t bits = to_bits(d), t = bits & MANT_MASK, f;
    int be = (int)(bits >> 52) & 0x7FF, e10, n, x, i;
    char *p = buf;
    if (bits >> 63) *p++ = '-';
    if (be == 0 && t == 0) {
        memcpy(p, "0.0", 3);
        return (size_t)(p - buf) + 3;
    }
    if (be != 0) {
        uint64_t c = t | ((uint64_t)1 << 52);
        int q = be - 1075;
        if (q < 0 && q > -53 && ((c >> -q) << -q) == c) {
            f = c >> -q; /* an integer below 2^53: its own digits */
            e10 = 0;
        } else f = schubfach(q, c, &e10);
    } else f = schubfach(-1074, t, &e10);
    while (f % 10 == 0) f /= 10, e10++;
    n = count_digits(f);
    x = e10 + n - 1; /* f = d1.d2...dn * 10^x */
    if (x > -7 && x < 21) {
        if (e10 >= 0) { /* an integer: digits, zeros, ".0" */
            put_digits(f, p, n);
            p += n;
            for (i = 0; i < e10; i++) *p++ = '0';
            *p++ = '.';
            *p++ = '0';
        } else if (x >= 0) { /* the point inside the digits */
            put_digits(f, p + 1, n);
            memmove(p, p + 1, (size_t)x + 1);
            p[x + 1] = '.';
            p += n + 1;
        } else { /* 0.000ddd */
            *p++ = '0';
            *p++ = '.';
            for (i = -1; i > x; i--) *p++ = '0';
            put_digits(f, p, n);
            p += n;
        }
    } else {
        put_digits(f, p + 1, n);
        p[0] = p[1];
        if (n > 1) {
            p[1] = '.';
            p += n + 1;
        } else p++;
        *p++ = 'e';
        *p++ = x < 0 ? '-' : '+';
        x = x < 0 ? -x : x;
        if (x >= 100) *p++ = (char)('0' + x / 100), x %= 100, *p++ = (char)('0' + x / 10);
        else if (x >= 10) *p++ = (char)('0' + x / 10);
        *p++ = (char)('0' + x % 10);
    }
    return (size_t)(p - buf);
}
