/*
 * numconv.h -- locale-independent number conversion.
 *
 * The C library's strtod/snprintf follow LC_NUMERIC (a German locale
 * writes "1,5").  These wrappers always use '.', whatever the process
 * locale, and are exact: parsing is correctly rounded, formatting gives
 * the shortest text that reads back to the same double.
 */
#ifndef COZMOX_NUMCONV_H
#define COZMOX_NUMCONV_H

#include <stddef.h>

/* Longest text cz_format_double writes, plus the terminating NUL. */
#define CZ_NUMBUF 40

/* Parse a complete JSON number token s[0..n) (already validated against
 * the JSON grammar) as the correctly rounded double.  Returns 0 only on
 * allocation failure for very long tokens. */
int cz_parse_double(const char *s, size_t n, double *out);

/* Write finite d as the shortest "%.{15,16,17}g" text that reads back
 * bit-for-bit, always with '.' as decimal point; returns its length.
 * Integral values get ".0" appended so they read back as floats. */
size_t cz_format_double(double d, char *buf);

#endif
