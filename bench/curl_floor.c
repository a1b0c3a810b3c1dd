/*
 * curl_floor.c -- the transport floor for bench/run.sh.
 *
 *   curl_floor URL N [WARMUP]
 *
 * One libcurl easy handle, reused for WARMUP (default 50) untimed GETs
 * and then N timed GETs of URL over the same keep-alive connection; the
 * body is discarded in the write callback.  Sends the same request
 * headers as a cozmox client (Accept, Authorization, User-Agent,
 * Accept-Encoding), so the bytes on the wire match.  Prints the seconds
 * (CLOCK_MONOTONIC) the N requests took and the body bytes of the last
 * one; exits 1 on any transfer error or non-200 status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <curl/curl.h>

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata) {
    (void)ptr;
    *(size_t *)userdata += size * nmemb;
    return size * nmemb;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One GET; returns 0 on HTTP 200, else prints why and returns 1. */
static int get(CURL *e, size_t *bytes) {
    long status = 0;
    CURLcode rc;
    *bytes = 0;
    rc = curl_easy_perform(e);
    if (rc != CURLE_OK) {
        fprintf(stderr, "curl_floor: %s\n", curl_easy_strerror(rc));
        return 1;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        fprintf(stderr, "curl_floor: HTTP %ld\n", status);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    struct curl_slist *headers = NULL;
    size_t bytes = 0;
    long i, n, warmup;
    double t0, t1;
    CURL *e;

    if (argc < 3) {
        fprintf(stderr, "usage: %s URL N [WARMUP]\n", argv[0]);
        return 2;
    }
    n = atol(argv[2]);
    warmup = argc > 3 ? atol(argv[3]) : 50;
    if (n <= 0 || warmup < 0) return 2;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    e = curl_easy_init();
    if (e == NULL) return 1;
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "Authorization: Bearer bench-token");
    curl_easy_setopt(e, CURLOPT_URL, argv[1]);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "cozmox-lua/0.1.0 libcurl/7.88.1 Lua 5.4");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &bytes);

    for (i = 0; i < warmup; i++)
        if (get(e, &bytes)) return 1;
    t0 = now();
    for (i = 0; i < n; i++)
        if (get(e, &bytes)) return 1;
    t1 = now();
    printf("%.9f %zu\n", t1 - t0, bytes);

    curl_easy_cleanup(e);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    return 0;
}
