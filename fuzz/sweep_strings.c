/*
 * sweep_strings.c -- a deterministic sweep of the SSSE3 string paths, the
 * complement of the fuzzer's random search (it finds what fuzzing did not:
 * an escape ending exactly at a piece's end).
 *
 *   clang -std=gnu99 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
 *     -Isrc $(pkg-config --cflags lua5.4) -o build/sweep_strings fuzz/sweep_strings.c \
 *     src/jdecode.c src/jencode.c src/buffer.c src/numconv.c src/keeper.c \
 *     $(pkg-config --libs lua5.4) -lm
 *   build/sweep_strings [DOCS]          (ATTACK_SCANNER=1: the scanner sweep too)
 *
 * 1. With ATTACK_SCANNER=1: every sequence of 1-4 bytes drawn from 31
 *    bytes that matter to UTF-8 and JSON (ASCII, quote, backslash,
 *    controls, every continuation range, every lead with its special
 *    second-byte ranges, 0xF5-0xFF), after 0..47 bytes of valid mixed
 *    text and before 0..35 more, at 16 alignments, in blocks of exactly
 *    their size: cz_skip_text_ssse3 must agree with cz_skip_text_scalar
 *    (about 52 million comparisons, a minute or two under ASan).
 * 2. DOCS documents (default 4000) of a string holding a random 1-3 byte
 *    sequence from the same set among escapes and multi-byte text, as an
 *    array element and as the whole document, each through the fuzz
 *    target (every check of fuzz_decode.c: SSSE3 against scalar, split
 *    at every byte, encode against the reference, ...).
 */
#include "fuzz_decode.c"

static const unsigned char V[] = {0x00, 0x1F, 0x20, 0x22, 0x5C, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                  0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3,
                                  0xF4, 0xF5, 0xF7, 0xF8, 0xFF};
#define NV (sizeof V)

static unsigned long long rs = 0x9E3779B97F4A7C15ULL;
static unsigned rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (unsigned)(rs >> 11); }

static const char *FILL[] = {"a", "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "\\n", "\\u00e9", "\\ud83d\\ude00", " "};

static size_t fill(unsigned char *p, size_t n, int json) {
    size_t k = 0;
    while (k < n) {
        const char *f = FILL[rnd() % (json ? 8 : 4)];
        size_t l = strlen(f);
        if (k + l > n) f = "a", l = 1;
        memcpy(p + k, f, l);
        k += l;
    }
    return k;
}

static void sweep_scanner(void) {
#if defined(CZ_TEXT_SSSE3)
    static unsigned char store[256 + 16];
    unsigned long long calls = 0;
    size_t a, b, c, d, len;
    if (!cz_have_ssse3()) return;
    for (len = 1; len <= 4; len++) {
        size_t na = NV, nb = len > 1 ? NV : 1, nc = len > 2 ? NV : 1, nd = len > 3 ? NV : 1;
        for (a = 0; a < na; a++) for (b = 0; b < nb; b++) for (c = 0; c < nc; c++) for (d = 0; d < nd; d++) {
            unsigned char seq[4] = {V[a], V[b], V[c], V[d]};
            static const size_t offs[] = {0, 1, 2, 12, 13, 14, 15, 16, 17, 28, 29, 30, 31, 32, 33, 47};
            size_t oi;
            for (oi = 0; oi < sizeof offs / sizeof offs[0]; oi++) {
                size_t extra, pre = offs[oi];
                for (extra = 0; extra < 4; extra++) {
                    size_t tail = extra == 0 ? 0 : extra == 1 ? 1 : extra == 2 ? 5 : 16 + rnd() % 20;
                    size_t n = pre + len + tail, mis = rnd() % 16;
                    unsigned char *m;
                    int k1 = 1, k2 = 1;
                    const unsigned char *p1, *p2;
                    if (n < 16 || n > 200) continue;
                    m = store + mis;
                    fill(m, pre, 0);
                    memcpy(m + pre, seq, len);
                    fill(m + pre + len, tail, 0);
                    {
                        /* an exact-size block, so ASan sees any read past the end */
                        unsigned char *x = (unsigned char *)malloc(n + 16);
                        memcpy(x + (mis & 7), m, n);
                        m = x + (mis & 7);
                        p1 = cz_skip_text_scalar(m, m + n, &k1);
                        p2 = cz_skip_text_ssse3(m, m + n, &k2);
                        if (p1 != p2 || (p1 < m + n && *p1 >= 0x80 && k1 != k2)) {
                            size_t i;
                            fprintf(stderr, "scanner mismatch n=%zu: scalar %zu k%d, ssse3 %zu k%d\n", n,
                                    (size_t)(p1 - m), k1, (size_t)(p2 - m), k2);
                            for (i = 0; i < n; i++) fprintf(stderr, "%02x ", m[i]);
                            fprintf(stderr, "\n");
                            abort();
                        }
                        /* and at the very end of an exact block */
                        {
                            unsigned char *y = (unsigned char *)malloc(n);
                            memcpy(y, m, n);
                            k1 = k2 = 1;
                            p1 = cz_skip_text_scalar(y, y + n, &k1);
                            p2 = cz_skip_text_ssse3(y, y + n, &k2);
                            if ((p1 - y) != (p2 - y) || (p1 < y + n && *p1 >= 0x80 && k1 != k2)) abort();
                            free(y);
                        }
                        free(x);
                        calls++;
                    }
                }
            }
        }
    }
    fprintf(stderr, "sweep: scanner: %llu comparisons, no mismatch\n", calls);
#endif
}

static void one(const unsigned char *doc, size_t n) {
    unsigned char *in = (unsigned char *)malloc(n + 4);
    in[0] = (unsigned char)(rnd() & 3);
    in[1] = (unsigned char)rnd();
    in[2] = (unsigned char)rnd();
    in[3] = (unsigned char)(rnd() & 0x3F);
    memcpy(in + 4, doc, n);
    LLVMFuzzerTestOneInput(in, n + 4);
    free(in);
}

static void sweep_docs(size_t limit) {
    unsigned char doc[512];
    size_t a, b, c, count = 0;
    for (a = 0; a < NV; a++) for (b = 0; b < NV; b++) for (c = 0; c < NV; c++) {
        size_t pre, post, n = 0, len;
        if (count >= limit) goto out;
        if (rnd() % 3) continue; /* a third of the 3-byte combinations */
        pre = rnd() % 40;
        post = rnd() % 24;
        len = 1 + rnd() % 3;
        doc[n++] = '[';
        doc[n++] = '"';
        n += fill(doc + n, pre, 1);
        doc[n++] = V[a];
        if (len > 1) doc[n++] = V[b];
        if (len > 2) doc[n++] = V[c];
        n += fill(doc + n, post, 1);
        memcpy(doc + n, "\",\"xxxxxxxxxxxxxxxxxxxx\"]", 24);
        n += 24;
        one(doc, n);
        /* the same string as the whole document, ending right after it */
        one(doc + 1, n - 1 - 24 + 1);
        count++;
    }
out:
    fprintf(stderr, "sweep: %zu generated documents through the fuzz target, no disagreement\n", count * 2);
}

int main(int argc, char **argv) {
    size_t limit = argc > 1 ? (size_t)atol(argv[1]) : 4000;
    if (getenv("ATTACK_SCANNER")) sweep_scanner();
    sweep_docs(limit);
    return 0;
}
