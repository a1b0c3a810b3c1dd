/*
 * numcheck.c -- differential test of src/numconv.c against the C library.
 *
 *   numcheck [COUNT [SEED]]         COUNT random literals and COUNT random
 *                                   doubles (default 200000, seed 1)
 *   numcheck --files FILE...        every number literal in the files
 *
 * Built and run by spec/numbers_spec.lua (200,000 of each) and by
 * `make numcheck` (10 million of each).  The program never calls
 * setlocale, so the C library runs in the "C" locale, where glibc's
 * strtod is correctly rounded and printf exact.
 *
 * Text -> double: every literal must be valid JSON (cz_scan_number says
 * so) and cz_parse_double must give strtod's bits exactly (-0.0 and
 * overflow to inf included).  The literals come in shapes (see
 * gen_literal): C library renderings of random doubles at every
 * precision; random digit strings of 1 to 800 digits at any exponent;
 * exact halfway points between two doubles (computed exactly with a
 * small base-10^9 big integer) and texts just above and below them,
 * truncated at 17 to 40 digits (the cases where the 128-bit product
 * cannot decide); subnormals, numbers near the overflow threshold, and a
 * list of known hard cases.
 *
 * Double -> text: for random doubles of every shape (random bit patterns,
 * every exponent, subnormals, powers of two and their neighbours,
 * integers, short decimals), cz_format_double's text must
 *   - read back (strtod) to the same bits;
 *   - be shortest: no text with one digit fewer reads back (tried: the
 *     C library's correctly rounded one and its two neighbours);
 *   - have the digits of the C library's correctly rounded rendering at
 *     that length whenever that one reads back (the closest);
 *   - be laid out as numconv.h documents (rebuilt here independently).
 *
 * Prints one summary line per direction and exits 1 at the first
 * mismatch, after printing it.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "numconv.h"

static uint64_t rng_state;

static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static unsigned rndn(unsigned n) { return (unsigned)(rnd() % n); }

static double from_bits(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}
static uint64_t to_bits(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

/* ------------------------------------------------------- big integers */

/* Little-endian base-10^9 limbs; enough for (2^54) * 5^1076 and 2^1025. */
#define LIMBS 140
typedef struct big {
    int n;
    uint32_t l[LIMBS];
} big;

static void big_set(big *b, uint64_t v) {
    b->n = 0;
    do {
        b->l[b->n++] = (uint32_t)(v % 1000000000u);
        v /= 1000000000u;
    } while (v);
}

static void big_mul(big *b, uint32_t m) { /* m < 2^32, limb * m + carry fits */
    uint64_t carry = 0;
    int i;
    for (i = 0; i < b->n; i++) {
        uint64_t x = (uint64_t)b->l[i] * m + carry;
        b->l[i] = (uint32_t)(x % 1000000000u);
        carry = x / 1000000000u;
    }
    while (carry) {
        if (b->n == LIMBS) abort();
        b->l[b->n++] = (uint32_t)(carry % 1000000000u);
        carry /= 1000000000u;
    }
}

static void big_mul_pow(big *b, uint32_t base, int k) {
    uint32_t chunk = 1;
    int per = 0;
    while ((uint64_t)chunk * base < 4000000000u) chunk *= base, per++;
    for (; k >= per; k -= per) big_mul(b, chunk);
    while (k-- > 0) big_mul(b, base);
}

/* Decimal digits of b into out (NUL-terminated); returns the count. */
static int big_str(const big *b, char *out) {
    int i, len = sprintf(out, "%" PRIu32, b->l[b->n - 1]);
    for (i = b->n - 2; i >= 0; i--) len += sprintf(out + len, "%09" PRIu32, b->l[i]);
    return len;
}

/* ---------------------------------------------------------- literals */

/* Write the value D * 10^E (D: nd digits, first one nonzero unless D is
 * "0") as a JSON literal in a random layout. */
static int layout(char *out, int neg, const char *D, int nd, long E) {
    char *p = out;
    unsigned how = rndn(4);
    if (neg) *p++ = '-';
    if (how == 0 || nd > 300) { /* DDDe+E */
        memcpy(p, D, (size_t)nd), p += nd;
        p += sprintf(p, "%s%s%ld", rndn(2) ? "e" : "E", E >= 0 && rndn(2) ? "+" : "", E);
    } else if (how == 1 || E + nd > 40 || E + nd < -40) { /* D.DDDe+X */
        *p++ = D[0];
        if (nd > 1) *p++ = '.', memcpy(p, D + 1, (size_t)nd - 1), p += nd - 1;
        p += sprintf(p, "e%s%ld", E + nd - 1 >= 0 && rndn(2) ? "+" : "", E + nd - 1);
    } else if (E >= 0) { /* DDD000 or DDD000.000 */
        memcpy(p, D, (size_t)nd), p += nd;
        for (; E > 0; E--) *p++ = '0';
        if (rndn(2)) {
            int z = (int)rndn(3) + 1;
            *p++ = '.';
            while (z--) *p++ = '0';
        }
    } else if (E + nd > 0) { /* DD.DDD */
        memcpy(p, D, (size_t)(nd + E)), p += nd + E;
        *p++ = '.';
        memcpy(p, D + nd + E, (size_t)-E), p += -E;
    } else { /* 0.000DDD */
        *p++ = '0', *p++ = '.';
        for (E = -E - nd; E > 0; E--) *p++ = '0';
        memcpy(p, D, (size_t)nd), p += nd;
    }
    *p = '\0';
    return (int)(p - out);
}

static uint64_t random_finite_bits(void) {
    uint64_t b;
    do b = rnd(); while (((b >> 52) & 0x7FF) == 0x7FF);
    return b;
}

/* A random double of interesting shape. */
static double random_double(void) {
    switch (rndn(8)) {
    case 0: case 1: return from_bits(random_finite_bits());
    case 2: /* subnormal */
        return from_bits((rnd() & 0x800FFFFFFFFFFFFFULL) >> (rndn(4) == 0 ? rndn(52) : 0));
    case 3: { /* every exponent, one bit pattern near a power of two */
        uint64_t e = rndn(2046) + 1, m = rndn(3) == 0 ? 0 : rndn(2) ? 1 : 0xFFFFFFFFFFFFFULL;
        return from_bits((rnd() & 0x8000000000000000ULL) | e << 52 | m);
    }
    case 4: return (double)(int64_t)(rnd() >> rndn(64)) * (rndn(2) ? 1 : -1); /* integers */
    case 5: { /* short decimals: 1..7 digits at a moderate exponent */
        char t[64];
        snprintf(t, sizeof t, "%" PRIu64 "e%d", rnd() % 10000000u, (int)rndn(60) - 30);
        return strtod(t, NULL);
    }
    default: /* uniform in [1e-30, 1e30] by exponent */
        return ldexp((double)(rnd() >> 11) / 9007199254740992.0 + 0.5, (int)rndn(200) - 100) *
               (rndn(2) ? 1 : -1);
    }
}

/* The exact halfway point above |x| (x finite, not the largest) as
 * digits D and exponent E: D * 10^E. */
static int halfway(double x, char *D, long *E) {
    uint64_t b = to_bits(x) & 0x7FFFFFFFFFFFFFFFULL, m;
    int be = (int)(b >> 52), e;
    big g;
    if (be == 0) m = b, e = -1074;
    else m = (b & 0xFFFFFFFFFFFFFULL) | (1ULL << 52), e = be - 1075;
    big_set(&g, 2 * m + 1); /* midpoint = (2m + 1) * 2^(e - 1) */
    if (e - 1 >= 0) {
        big_mul_pow(&g, 2, e - 1);
        *E = 0;
    } else {
        big_mul_pow(&g, 5, 1 - e);
        *E = e - 1;
    }
    return big_str(&g, D);
}

static const char *const hard_cases[] = {
    "1e23", "8.589973e9", "9007199254740993", "9007199254740993.0", "9007199254740992.5",
    "1e-400", "1e400", "-0", "-0.0", "0e999999999999", "1e-324", "2e-324", "3e-324",
    "2.4703282292062327e-324", "2.4703282292062328e-324", "2.47032822920623272e-324",
    "4.9406564584124654e-324", "2.2250738585072011e-308", "2.2250738585072012e-308",
    "2.2250738585072014e-308", "2.225073858507201136057409796709131975934819546351645648e-308",
    "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308",
    "1.797693134862315807937289714053e308", "1.7976931348623158079372897140530341507993413271003782693617377898044496829276475094664901797758720709633028641669288791094655554785194040263065748867150582068190890200070838367627385484581771153176447573027006985099187e308",
    "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791",
    "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792",
    "7.3177701707893310e+15", "5708990770823839524233143877797980545530986496",
    "0.500000000000000166533453693773481063544750213623046875", "3.518437208883201171875e13",
    "62.5364939768271845828", "8.10109172351e-10", "1.00000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203124",
    "1.00000000000000011102230246251565404236316680908203126", "4503599627370496.5",
    "4503599627370497.5", "1090544144181609348835077142190", "1.0e-2147483649", "1e2147483648",
    "123456789012345678901234567890e-320", "0.000000000000000000000000000000000000001e330",
};

/* One random literal at out; returns its length. */
static int gen_literal(char *out) {
    static char D[2000];
    unsigned shape = rndn(100);
    if (shape < 35) { /* the C library's text of a random double */
        double x = random_double();
        int prec = (int)rndn(21);
        switch (rndn(3)) {
        case 0: return sprintf(out, "%.*e", prec, x);
        case 1: return sprintf(out, "%.*g", prec ? prec : 17, x);
        default: return sprintf(out, "%.17g", x);
        }
    }
    if (shape < 65) { /* random digits */
        unsigned r = rndn(100);
        int nd = r < 60 ? (int)rndn(19) + 1 : r < 90 ? (int)rndn(22) + 19 : r < 98 ? (int)rndn(200) + 40
                                                                                : (int)rndn(800) + 1;
        long E;
        int i;
        for (i = 0; i < nd; i++) D[i] = (char)('0' + rndn(10));
        if (rndn(4) == 0) /* a run of zeros or nines inside */
            for (i = (int)rndn((unsigned)nd); i < nd && rndn(30); i++) D[i] = rndn(2) ? '0' : '9';
        D[0] = (char)('1' + rndn(9));
        E = rndn(5) == 0 ? (long)rndn(700) - 370 - nd : (long)rndn(80) - 40 - nd / 2;
        return layout(out, (int)rndn(2), D, nd, E);
    }
    if (shape < 97) { /* near a halfway point */
        double x = random_double();
        long E;
        int nd, cut;
        if (isinf(x) || fabs(x) == 1.7976931348623157e308) x = 1.5;
        nd = halfway(x, D, &E);
        switch (rndn(4)) {
        case 0: break; /* exact: ties to even */
        case 1: D[nd++] = (char)('1' + rndn(9)), E--; break; /* just above */
        default: /* truncated at 17..40 digits: just below, or one unit above */
            cut = 17 + (int)rndn(24);
            if (cut < nd) {
                E += nd - cut;
                nd = cut;
                if (rndn(2)) { /* + 1 in the last digit */
                    int i = nd - 1;
                    while (i >= 0 && D[i] == '9') D[i--] = '0';
                    if (i < 0) memmove(D + 1, D, (size_t)nd), D[0] = '1', nd++;
                    else D[i]++;
                }
            }
        }
        while (nd > 1 && D[nd - 1] == '0') nd--, E++;
        return layout(out, x < 0, D, nd, E);
    }
    {
        const char *s = hard_cases[rndn(sizeof hard_cases / sizeof hard_cases[0])];
        return sprintf(out, "%s", s);
    }
}

static int check_literal(const char *s, int len, long *count) {
    cz_number num;
    double ours, ref;
    int rc = cz_scan_number((const unsigned char *)s, (size_t)len, &num);
    if (rc != CZ_NUM_OK) {
        printf("numcheck: generated literal is not valid JSON (code %d): %s\n", rc, s);
        return 0;
    }
    ours = cz_parse_double(s, (size_t)len);
    ref = strtod(s, NULL);
    (*count)++;
    if (to_bits(ours) != to_bits(ref)) {
        printf("numcheck: PARSE MISMATCH for %s\n  ours   %.17g (0x%016" PRIx64 ")\n  strtod %.17g (0x%016" PRIx64 ")\n",
               s, ours, to_bits(ours), ref, to_bits(ref));
        return 0;
    }
    return 1;
}

/* ----------------------------------------------------------- printing */

/* Digits and exponent of %.{n-1}e of x: D (n digits), returns X. */
static int c_digits(double x, int n, char *D) {
    char t[64];
    int i, k = 0;
    snprintf(t, sizeof t, "%.*e", n - 1, fabs(x));
    for (i = 0; t[i] != 'e'; i++)
        if (t[i] != '.') D[k++] = t[i];
    D[k] = '\0';
    return atoi(t + i + 1);
}

static int reads_back(const char *D, int n, int X, double x) {
    char t[64];
    snprintf(t, sizeof t, "%s%.*se%d", x < 0 ? "-" : "", n, D, X - n + 1);
    return to_bits(strtod(t, NULL)) == to_bits(x);
}

/* D +- 1 in the last digit (same length, or "" if it would change). */
static int nudge(const char *D, int n, int up, char *out) {
    int i = n - 1;
    memcpy(out, D, (size_t)n + 1);
    if (up) {
        while (i >= 0 && out[i] == '9') out[i--] = '0';
        if (i < 0) return 0;
        out[i]++;
    } else {
        while (i >= 0 && out[i] == '0') out[i--] = '9';
        if (i < 0 || (i == 0 && out[0] == '1' && n > 1)) return 0;
        out[i]--;
    }
    return 1;
}

/* numconv.h's layout of digits D (n, no trailing zero) at exponent X. */
static void ref_layout(int neg, const char *D, int n, int X, char *out) {
    char *p = out;
    int i;
    if (neg) *p++ = '-';
    if (X > -7 && X < 21) {
        if (X >= n - 1) {
            memcpy(p, D, (size_t)n), p += n;
            for (i = 0; i < X - n + 1; i++) *p++ = '0';
            *p++ = '.', *p++ = '0';
        } else if (X >= 0) {
            memcpy(p, D, (size_t)X + 1), p += X + 1;
            *p++ = '.';
            memcpy(p, D + X + 1, (size_t)(n - X - 1)), p += n - X - 1;
        } else {
            *p++ = '0', *p++ = '.';
            for (i = 0; i < -X - 1; i++) *p++ = '0';
            memcpy(p, D, (size_t)n), p += n;
        }
    } else {
        *p++ = D[0];
        if (n > 1) *p++ = '.', memcpy(p, D + 1, (size_t)n - 1), p += n - 1;
        p += sprintf(p, "e%c%d", X < 0 ? '-' : '+', X < 0 ? -X : X);
    }
    *p = '\0';
}

static int fail_print(double x, const char *ours, const char *why, const char *extra) {
    printf("numcheck: PRINT MISMATCH for %.17g (0x%016" PRIx64 "): %s\n  ours: %s\n%s%s%s", x, to_bits(x), why,
           ours, extra ? "  " : "", extra ? extra : "", extra ? "\n" : "");
    return 0;
}

static long n_asym; /* shortest text not the correctly rounded one (powers of two) */

static int check_print(double x, long *count) {
    char ours[CZ_NUMBUF + 1], D[32], R[32], A[32], want[64];
    size_t len = cz_format_double(x, ours);
    int i, k = 0, n, X = 0, lead = 1, point = -1, exp = 0, digits_before = 0;
    const char *e;
    (*count)++;
    if (len > CZ_NUMBUF) return fail_print(x, ours, "too long", NULL);
    ours[len] = '\0';
    if (to_bits(strtod(ours, NULL)) != to_bits(x)) return fail_print(x, ours, "does not read back", NULL);
    if (cz_scan_number((const unsigned char *)ours, len, &(cz_number){0}) != CZ_NUM_OK)
        return fail_print(x, ours, "not a JSON number", NULL);
    if (x == 0) return strcmp(ours, to_bits(x) ? "-0.0" : "0.0") == 0 ? 1 : fail_print(x, ours, "zero", NULL);
    /* Our digits D (n of them) and exponent X. */
    e = strpbrk(ours, "eE");
    if (e) exp = atoi(e + 1);
    for (i = ours[0] == '-'; i < (int)len && ours[i] != 'e'; i++) {
        if (ours[i] == '.') { point = digits_before; continue; }
        digits_before++;
        if (lead && ours[i] == '0') { X = 0; continue; }
        if (lead) { lead = 0; X = digits_before; }
        D[k++] = ours[i];
    }
    if (point < 0) point = digits_before;
    while (k > 0 && D[k - 1] == '0') k--;
    D[k] = '\0';
    n = k;
    X = point - X + exp; /* position of the first nonzero digit */
    /* Shortest: no (n-1)-digit text reads back. */
    if (n > 1) {
        int Xs = c_digits(x, n - 1, R);
        if (reads_back(R, n - 1, Xs, x) || (nudge(R, n - 1, 1, A) && reads_back(A, n - 1, Xs, x)) ||
            (nudge(R, n - 1, 0, A) && reads_back(A, n - 1, Xs, x)))
            return fail_print(x, ours, "not the shortest", R);
    }
    /* Closest: the correctly rounded n digits, when they read back. */
    {
        int Xr = c_digits(x, n, R);
        if (reads_back(R, n, Xr, x)) {
            if (strcmp(R, D) != 0 || Xr != X) return fail_print(x, ours, "not the closest", R);
        } else n_asym++;
    }
    ref_layout(x < 0, D, n, X, want);
    if (strcmp(want, ours) != 0) return fail_print(x, ours, "layout", want);
    return 1;
}

/* ------------------------------------------------------------- files */

static int check_files(int argc, char **argv) {
    long count = 0;
    int i;
    for (i = 0; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        char *text;
        long size, j;
        if (!f) { printf("numcheck: cannot open %s\n", argv[i]); return 1; }
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fseek(f, 0, SEEK_SET);
        text = malloc((size_t)size + 1);
        if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) { printf("numcheck: cannot read %s\n", argv[i]); return 1; }
        text[size] = '\0';
        fclose(f);
        for (j = 0; j < size;) {
            long k = j;
            cz_number num;
            if (!strchr("-0123456789", text[j]) || text[j] == '\0') { j++; continue; }
            while (k < size && text[k] && strchr("-+.eE0123456789", text[k])) k++;
            if (cz_scan_number((const unsigned char *)text + j, (size_t)(k - j), &num) == CZ_NUM_OK) {
                char save = text[k];
                text[k] = '\0';
                if (!check_literal(text + j, (int)(k - j), &count)) return 1;
                text[k] = save;
            }
            j = k;
        }
        free(text);
    }
    printf("numcheck: %ld literals from %d files parsed bit-identical to strtod\n", count, argc);
    return 0;
}

int main(int argc, char **argv) {
    long total = 200000, i, lits = 0, prints = 0;
    static char lit[4096];
    if (argc > 1 && strcmp(argv[1], "--files") == 0) return check_files(argc - 2, argv + 2);
    if (argc > 1) total = atol(argv[1]);
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    for (i = 0; i < (long)(sizeof hard_cases / sizeof hard_cases[0]); i++)
        if (!check_literal(hard_cases[i], (int)strlen(hard_cases[i]), &lits)) return 1;
    for (i = 0; i < 2046 * 2; i++) { /* every power of two, both signs, and both neighbours */
        double p = from_bits((uint64_t)(i / 2 + 1) << 52 | (uint64_t)(i & 1) << 63);
        if (!check_print(p, &prints) || !check_print(nextafter(p, 0), &prints) ||
            (!isinf(nextafter(p, 2 * p)) && !check_print(nextafter(p, 2 * p), &prints)))
            return 1;
    }
    for (i = 1; i <= 20000; i++) /* the smallest subnormals, both signs */
        if (!check_print(from_bits((uint64_t)i), &prints) || !check_print(-from_bits((uint64_t)i), &prints)) return 1;
    for (i = 0; i < total; i++) {
        int len = gen_literal(lit);
        if (!check_literal(lit, len, &lits)) return 1;
    }
    printf("numcheck: %ld literals parsed bit-identical to strtod (seed %s)\n", lits, argc > 2 ? argv[2] : "1");
    for (i = 0; i < total; i++) {
        double x = random_double();
        if (!check_print(x, &prints)) return 1;
    }
    printf("numcheck: %ld doubles printed shortest, closest, laid out as documented and read back by strtod "
           "(%ld where the correctly rounded text of that length does not read back)\n", prints, n_asym);
    return 0;
}
