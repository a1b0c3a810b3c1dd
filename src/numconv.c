/* numconv.c -- locale-independent, exact number conversion (numconv.h). */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "numconv.h"

/* Exact powers of ten representable as doubles (10^0 .. 10^22). */
static const double pow10_exact[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static char locale_point(void) {
    const char *p = localeconv()->decimal_point;
    return (p != NULL && p[0] != '\0' && p[1] == '\0') ? p[0] : '.';
}

/* strtod on a private copy whose '.' is replaced by the locale's decimal
 * point: glibc's strtod is correctly rounded, only the point differs. */
static int parse_slow(const char *s, size_t n, double *out) {
    char small[128], *buf = small, *dot;
    char point = locale_point();
    if (n >= sizeof small) {
        buf = (char *)malloc(n + 1);
        if (buf == NULL) return 0;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (point != '.' && (dot = memchr(buf, '.', n)) != NULL) *dot = point;
    *out = strtod(buf, NULL);
    if (buf != small) free(buf);
    return 1;
}

int cz_parse_double(const char *s, size_t n, double *out) {
    /* Clinger's fast path: at most 19 significant digits forming a
     * mantissa below 2^53 and a decimal exponent within +-22 give an
     * exactly representable operand pair, so one IEEE multiplication or
     * division is correctly rounded. */
    const char *p = s, *end = s + n;
    unsigned long long m = 0;
    int neg = 0, digits = 0, exp10 = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (digits < 19) { m = m * 10 + (unsigned)(*p - '0'); if (m) digits++; }
        else goto slow;
    }
    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
            if (digits >= 19) goto slow;
            m = m * 10 + (unsigned)(*p - '0');
            if (m) digits++;
            exp10--;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0, e = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) eneg = (*p++ == '-');
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (e > 10000) goto slow;
            e = e * 10 + (*p - '0');
        }
        exp10 += eneg ? -e : e;
    }
    if (m > (1ULL << 53)) goto slow;
    {
        double d = (double)m;
        if (m == 0) d = 0.0;
        else if (exp10 < 0 && exp10 >= -22) d /= pow10_exact[-exp10];
        else if (exp10 >= 0 && exp10 <= 22) d *= pow10_exact[exp10];
        else goto slow;
        *out = neg ? -d : d;
        return 1;
    }
slow:
    return parse_slow(s, n, out);
}

size_t cz_format_double(double d, char *buf) {
    char point = locale_point();
    int prec, len = 0;
    size_t i;
    int has_mark = 0;
    for (prec = 15; prec <= 17; prec++) {
        double back;
        len = snprintf(buf, CZ_NUMBUF, "%.*g", prec, d);
        if (point != '.') {
            char *q = memchr(buf, point, (size_t)len);
            if (q) *q = '.';
        }
        if (!parse_slow(buf, (size_t)len, &back)) back = d + 1; /* force next */
        if (back == d) break;
    }
    for (i = 0; i < (size_t)len; i++)
        if (buf[i] == '.' || buf[i] == 'e' || buf[i] == 'E') { has_mark = 1; break; }
    if (!has_mark) { buf[len++] = '.'; buf[len++] = '0'; buf[len] = '\0'; }
    return (size_t)len;
}
