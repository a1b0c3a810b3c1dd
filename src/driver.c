/*
 * driver.c -- curl's multi "socket" interface, driven by a host's event
 * loop: the C half of the loop transport (lua/cozmox/transport/loop.lua).
 *
 *   d = curl.driver(handle)     one multi handle (nil, message when curl
 *                               cannot make one); handle (curl.handle) is
 *                               the template every transfer duplicates:
 *                               TLS, gzip, HTTP/2 + PIPEWAIT, limits,
 *                               the sink's limits (its connections stay
 *                               in this multi handle's own cache)
 *   x = d:start(req, want_meta) a transfer (req: see easy.c) on the multi,
 *                               or nil, message, kind, code when it cannot
 *                               be set up (kind "memory" on ENOMEM, else
 *                               "network": e.g. out of descriptors)
 *   fds, timeout = d:watch()    what curl waits for: { { fd =, events =
 *                               "r" | "w" | "rw" }, ... } and the seconds
 *                               until its timer is due (nil: no timer)
 *   n = d:step(ready)           advance curl: ready = { [fd] = "r" | "w" |
 *                               "rw" } (what the wait saw; other fds are
 *                               not touched), nil (not known: every
 *                               watched fd is checked) or false (the
 *                               timer only); a due timer is always run.
 *                               n: transfers that finished in this step
 *   d:handoff([all])            wake one (all: every) running transfer's
 *                               owner (the driving coroutine is leaving)
 *   d:running()                 transfers still in flight
 *   d:close()                   every transfer ends ("closed"), the multi
 *                               handle is released; idempotent
 *   x:done()  x:fd()  x:drain() finished?; its wake-up descriptor
 *   x:signal()                  (readable once it finished, on a handoff
 *                               or a signal); empty it; make it readable
 *   rec = x:finish()            the result record (transfer.h) of a
 *                               finished transfer; the ticket is spent
 *   x:cancel()                  give the transfer up now
 *
 * Nothing here waits: the waiting happens in Lua, outside every C frame
 * (Lua 5.1 and LuaJIT cannot yield across one).  curl's callbacks only
 * record what curl wants (sockets, timer) and feed bodies to each
 * transfer's response sink exactly as the easy handle does (transfer.c);
 * no Lua error can unwind through curl: the sinks run their decoder
 * protected, records are built protected, and everything that can raise
 * happens before a transfer is added or after curl returned.
 *
 * Ownership.  The driver userdata owns the multi handle, every transfer
 * (a malloc'd struct on its list, whose header buffer and wake-up
 * descriptor -- and, from libcurl 8.1.0 on, its easy handle -- are
 * pooled for the next request) and, in its user
 * value table, the handle, each transfer's sink and request table (the
 * body curl sends lives there).  A ticket (x) is what the requesting
 * coroutine holds; its user value is the driver, so the driver outlives
 * every ticket.  A ticket collected before its transfer finished (the
 * coroutine was dropped) abandons it: removed from the multi at once,
 * or -- when the collection happens inside one of curl's callbacks --
 * at the end of the step that runs it.  The wake-up descriptor of an
 * abandoned transfer is signalled (a host loop still watching it for the
 * lost coroutine is woken), so is every running transfer's (one of their
 * owners takes the driving over, should the lost coroutine have been the
 * one driving), and it is kept open RETIRED_STEPS steps longer, so its
 * number is not reused under a stale watcher; at most RETIRED_MAX are
 * kept, and d:close() closes them all.
 *
 * One Lua state's driver is used from one thread at a time; there is no
 * global state here, so hosts running Lua states in several threads can
 * each have their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif
#include <curl/curl.h>
#include "compat.h"
#include "clock.h"
#include "keeper.h"
#include "transfer.h"
#include "easy.h"

#define DRIVER_MT "cozmox.curl.driver"
#define TICKET_MT "cozmox.curl.transfer"
#define POOL_MAX 16
/* Retired wake descriptors kept at most; beyond, the oldest is closed.
 * Each was signalled when it retired, so an adapter still watching it for
 * a lost coroutine has long been woken and stopped by then. */
#define RETIRED_MAX 64
/* Steps of the driver after a retirement before the descriptor closes:
 * the wait of the first may have begun before it retired; the second and
 * third waited wholly after it, so the host loop has turned at least once
 * since the descriptor became readable (an adapter's stale watcher on it
 * fired and was stopped) before its number can be reused. */
#define RETIRED_STEPS 3
#define CLOSED_MESSAGE "the client was closed during the call"

enum { X_IDLE = 0, X_RUNNING, X_DONE, X_ABANDONED };

typedef struct xfer {
    struct xfer *next;
    CURL *easy;
    int state;
    int in_multi;
    int ref;          /* its { sink, req } in the driver's user value; LUA_NOREF */
    int want_meta;
    CURLcode rc;
    int wake_r, wake_w; /* eventfd (the same fd twice) or a pipe */
    unsigned long retired_at; /* the driver's step count when it retired */
    cz_req_headers rh;
    cz_buf hdrs;
    cz_transfer t;
} xfer;

typedef struct watch {
    curl_socket_t fd;
    int what;         /* CURL_POLL_IN / OUT / INOUT */
    int mask;         /* during a step: CURL_CSELECT_* to act on, -1: skip */
} watch;

typedef struct cz_driver {
    CURLM *m;
    CURL *model;                  /* the handle's easy handle */
    cz_handle *owner;             /* that handle (kept by the uservalue) */
    int fresh;                    /* libcurl < 8.1.0: a new easy handle per
                                   * transfer (see easy.c) */
    struct curl_slist *fixed, *anonymous;
    xfer *live;                   /* started, finished or abandoned */
    xfer *idle;                   /* the pool */
    int nidle;
    xfer *retired;                /* abandoned: only their wake fds, newest first */
    int nretired;
    unsigned long steps;          /* d:step calls so far */
    watch *w;
    int nw, cw;
    double timer_at;              /* monotonic seconds; < 0: none */
    int in_curl;
    int oom;                      /* a socket callback could not record */
    int closed;
    int gone;                     /* __gc ran: tickets must not look */
    struct cz_keeper *keeper;     /* the state's: header buffers are kept blocks */
} cz_driver;

typedef struct ticket {
    cz_driver *d;
    xfer *x;
} ticket;

/* ------------------------------------------------------------ wake fds */

static int wake_open(xfer *x) {
#ifdef __linux__
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return 0;
    x->wake_r = x->wake_w = fd;
#else
    int p[2];
    if (pipe(p) != 0) return 0;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    x->wake_r = p[0];
    x->wake_w = p[1];
#endif
    return 1;
}

static void wake_signal(xfer *x) {
    uint64_t one = 1;
    ssize_t n;
    if (x->wake_w < 0) return;
    do n = write(x->wake_w, &one, x->wake_r == x->wake_w ? sizeof one : 1);
    while (n < 0 && errno == EINTR);
    (void)n; /* full (EAGAIN): it is readable already */
}

static void wake_drain(xfer *x) {
    char buf[64];
    ssize_t n;
    if (x->wake_r < 0) return;
    do n = read(x->wake_r, buf, sizeof buf);
    while (n > 0 || (n < 0 && errno == EINTR));
}

static void wake_close(xfer *x) {
    if (x->wake_r >= 0) close(x->wake_r);
    if (x->wake_w >= 0 && x->wake_w != x->wake_r) close(x->wake_w);
    x->wake_r = x->wake_w = -1;
}

/* ------------------------------------------------------------ callbacks */

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
    cz_driver *d = (cz_driver *)userp;
    int i;
    (void)e, (void)socketp;
    for (i = 0; i < d->nw; i++)
        if (d->w[i].fd == s) break;
    if (what == CURL_POLL_REMOVE) {
        if (i < d->nw) d->w[i] = d->w[--d->nw];
        return 0;
    }
    if (i == d->nw) {
        if (d->nw == d->cw) {
            int cw = d->cw ? 2 * d->cw : 8;
            watch *w = (watch *)realloc(d->w, (size_t)cw * sizeof *w);
            if (w == NULL) {
                d->oom = 1;
                return -1;
            }
            d->w = w, d->cw = cw;
        }
        d->w[d->nw].fd = s;
        d->w[d->nw].mask = -1;
        d->nw++;
    }
    d->w[i].what = what;
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp) {
    cz_driver *d = (cz_driver *)userp;
    (void)m;
    d->timer_at = timeout_ms < 0 ? -1 : cz_clock_monotonic() + (double)timeout_ms / 1000.0;
    return 0;
}

/* ------------------------------------------------------------ transfers */

static void xfer_destroy(xfer *x) {
    if (x->easy) curl_easy_cleanup(x->easy);
    cz_req_headers_free(&x->rh);
    cz_buf_free(&x->hdrs);
    wake_close(x);
    free(x);
}

/* x's easy handle: a duplicate of the model (every option), its
 * callbacks bound to x.  Not attached to the state's share handle: the
 * client's connections live in its own multi handle's cache, go when the
 * client is closed, and are never handed to another multi handle (curl
 * cannot multiplex HTTP/2 on a connection another multi handle made; get_many
 * would open one connection per transfer).  0 when memory or curl refuse. */
static int easy_setup(cz_driver *d, xfer *x) {
    /* From libcurl 8.1.0 the model itself performs the handle's requests:
     * mid-transfer (a finalizer starting one here) it is not copied. */
    if (!d->fresh && *cz_handle_busy(d->owner)) return 0;
    x->easy = curl_easy_duphandle(d->model);
    return x->easy != NULL && cz_transfer_bind(&x->t, x->easy) == CURLE_OK &&
           curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x) == CURLE_OK;
}

/* A transfer from the pool, or a new one.  Before libcurl 8.1.0 an easy
 * handle never performs twice (a stale pointer into the previous
 * response's headers, see easy.c): the pool then keeps the wake-up
 * descriptor and the buffer, and the easy handle is new each time.  NULL
 * when memory or curl refuse. */
static xfer *xfer_acquire(cz_driver *d, int *err) {
    xfer *x = d->idle;
    if (x != NULL) {
        d->idle = x->next;
        d->nidle--;
    } else {
        x = (xfer *)calloc(1, sizeof *x);
        if (x == NULL) {
            *err = ENOMEM;
            return NULL;
        }
        x->wake_r = x->wake_w = -1;
        x->hdrs.keeper = d->keeper;
        if (!wake_open(x)) {
            *err = errno;
            xfer_destroy(x);
            return NULL;
        }
    }
    errno = 0;
    if (x->easy == NULL && !easy_setup(d, x)) {
        *err = errno;
        xfer_destroy(x);
        return NULL;
    }
    x->state = X_IDLE;
    x->in_multi = 0;
    x->ref = LUA_NOREF;
    x->rc = CURLE_OK;
    x->next = d->live;
    d->live = x;
    wake_drain(x);
    return x;
}

static void unlink_live(cz_driver *d, xfer *x) {
    xfer **p = &d->live;
    while (*p != NULL && *p != x) p = &(*p)->next;
    if (*p == x) *p = x->next;
    x->next = NULL;
}

/* The retired transfers from the n-th on (0: all) closed. */
static void retired_trim(cz_driver *d, int n) {
    xfer **p = &d->retired, *x;
    int i;
    for (i = 0; *p != NULL && i < n; i++) p = &(*p)->next;
    while ((x = *p) != NULL) {
        *p = x->next;
        xfer_destroy(x);
        d->nretired--;
    }
}

/* Retired descriptors closed once RETIRED_STEPS steps followed their
 * retirement (the list is newest first: the rest are older still). */
static void retired_sweep(cz_driver *d) {
    xfer *x;
    int i = 0;
    for (x = d->retired; x != NULL; x = x->next, i++)
        if (d->steps - x->retired_at >= RETIRED_STEPS) break;
    if (x != NULL) retired_trim(d, i);
}

/* Wake every running transfer's owner: one of them takes the driving
 * over (the driving coroutine may be the one that was lost). */
static void wake_running(cz_driver *d) {
    xfer *x;
    for (x = d->live; x != NULL; x = x->next)
        if (x->state == X_RUNNING) wake_signal(x);
}

/* Take x off the multi (never inside curl). */
static void xfer_remove(cz_driver *d, xfer *x) {
    if (x->in_multi && d->m != NULL) curl_multi_remove_handle(d->m, x->easy);
    x->in_multi = 0;
}

/* x leaves the live list: back to the pool, retired (abandoned: its wake
 * fd stays open) or destroyed.  uv_idx: the driver's user value table, or
 * 0 when the Lua side is gone (__gc of the driver). */
static void xfer_release(lua_State *L, cz_driver *d, int uv_idx, xfer *x) {
    xfer_remove(d, x);
    unlink_live(d, x);
    if (uv_idx != 0 && x->ref != LUA_NOREF) luaL_unref(L, uv_idx, x->ref);
    x->ref = LUA_NOREF;
    /* The easy handle back at what outlives the request -- or gone: on old
     * libcurl, when abandoned, or should curl refuse. */
    if (x->easy != NULL && (d->fresh || x->state == X_ABANDONED ||
                            curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, d->fixed) != CURLE_OK ||
                            curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, (char *)NULL) != CURLE_OK)) {
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    cz_req_headers_free(&x->rh);
    if (x->state == X_ABANDONED && !d->closed) {
        wake_signal(x);
        cz_buf_free(&x->hdrs);
        x->retired_at = d->steps;
        x->next = d->retired;
        d->retired = x;
        if (++d->nretired > RETIRED_MAX) retired_trim(d, RETIRED_MAX);
        wake_running(d);
    } else if (!d->closed && d->nidle < POOL_MAX) {
        if (x->hdrs.cap > 64 * 1024) cz_buf_free(&x->hdrs);
        x->state = X_IDLE;
        x->next = d->idle;
        d->idle = x;
        d->nidle++;
    } else {
        xfer_destroy(x);
    }
}

/* Stack: [uv_idx] the driver's user value.  Abandoned transfers out. */
static void reap_abandoned(lua_State *L, cz_driver *d, int uv_idx) {
    xfer *x = d->live, *next;
    for (; x != NULL; x = next) {
        next = x->next;
        if (x->state == X_ABANDONED) xfer_release(L, d, uv_idx, x);
    }
}

/* Finished transfers off the multi; their owners woken.  Returns how
 * many finished. */
static int collect_done(cz_driver *d) {
    CURLMsg *msg;
    int queued, n = 0;
    while ((msg = curl_multi_info_read(d->m, &queued)) != NULL) {
        xfer *x = NULL;
        if (msg->msg != CURLMSG_DONE) continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x == NULL) continue;
        x->rc = msg->data.result;
        curl_multi_remove_handle(d->m, x->easy);
        x->in_multi = 0;
        if (x->state == X_RUNNING) {
            x->state = X_DONE;
            wake_signal(x);
            n++;
        }
    }
    return n;
}

/* ------------------------------------------------------------ driver */

static void ticket_abandon(lua_State *L, struct ticket *tk, int idx);

static cz_driver *check_driver(lua_State *L, int idx) {
    cz_driver *d = (cz_driver *)luaL_checkudata(L, idx, DRIVER_MT);
    if (d->closed) luaL_error(L, "cozmox: the loop driver is closed");
    if (d->in_curl) luaL_error(L, "cozmox: the loop driver cannot be used from inside one of its transfers");
    return d;
}

/* Every transfer ends; the multi handle goes.  uv_idx as for release. */
static void driver_shutdown(lua_State *L, cz_driver *d, int uv_idx) {
    xfer *x, *next;
    for (x = d->live; x != NULL; x = next) {
        next = x->next;
        xfer_remove(d, x);
        if (x->state == X_RUNNING) {
            x->state = X_DONE;
            x->rc = CURLE_ABORTED_BY_CALLBACK;
            snprintf(x->t.errbuf, sizeof x->t.errbuf, "%s", CLOSED_MESSAGE);
            wake_signal(x);
        } else if (x->state == X_ABANDONED) {
            xfer_release(L, d, uv_idx, x);
        } /* done or never started: its ticket releases it */
    }
    d->closed = 1;
    while ((x = d->idle) != NULL) {
        d->idle = x->next;
        xfer_destroy(x);
    }
    d->nidle = 0;
    retired_trim(d, 0);
    if (d->m != NULL) curl_multi_cleanup(d->m);
    d->m = NULL;
    d->nw = 0;
    d->timer_at = -1;
}

static int driver_gc(lua_State *L) {
    cz_driver *d = (cz_driver *)luaL_checkudata(L, 1, DRIVER_MT);
    xfer *x;
    if (d->gone) return 0;
    driver_shutdown(L, d, 0);
    while ((x = d->live) != NULL) {
        d->live = x->next;
        xfer_destroy(x);
    }
    retired_trim(d, 0);
    free(d->w);
    d->w = NULL;
    d->cw = 0;
    d->gone = 1;
    return 0;
}

static int driver_close(lua_State *L) {
    cz_driver *d = (cz_driver *)luaL_checkudata(L, 1, DRIVER_MT);
    if (d->closed) return 0;
    if (d->in_curl) return luaL_error(L, "cozmox: the loop driver cannot be closed from inside one of its transfers");
    lua_settop(L, 1);
    cz_getuservalue(L, 1);
    driver_shutdown(L, d, 2);
    return 0;
}

/* curl.driver(handle) -> d, or nil, message when curl cannot make a
 * multi handle.  Stack: [1] handle. */
int cz_driver_new(lua_State *L) {
    cz_handle *h = cz_check_handle(L, 1);
    cz_driver *d;
    lua_settop(L, 1);
    d = (cz_driver *)cz_newuserdata(L, sizeof *d);
    memset(d, 0, sizeof *d);
    d->timer_at = -1;
    d->keeper = cz_keeper_of(L);
    cz_setmetatable(L, DRIVER_MT);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "handle");
    cz_setuservalue(L, 2);
    d->model = cz_handle_easy(h);
    d->owner = h;
    d->fresh = cz_handle_fresh(h);
    d->fixed = cz_handle_headers(h);
    d->anonymous = cz_handle_anonymous(h);
    d->m = curl_multi_init();
    if (d->m == NULL) { /* (no memory, or no descriptor for its wake-up pair) */
        lua_pushnil(L);
        lua_pushliteral(L, "cannot set up the curl multi handle (out of descriptors or memory)");
        return 2;
    }
    if (curl_multi_setopt(d->m, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(d->m, CURLMOPT_SOCKETDATA, d) != CURLM_OK ||
        curl_multi_setopt(d->m, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(d->m, CURLMOPT_TIMERDATA, d) != CURLM_OK)
        return luaL_error(L, "cozmox: cannot set up the curl multi handle");
#ifdef CURLPIPE_MULTIPLEX
    if (curl_multi_setopt(d->m, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX) != CURLM_OK)
        return luaL_error(L, "cozmox: cannot enable HTTP/2 multiplexing");
#endif
    return 1;
}

/* nil, message, kind, code: a transfer that could not be set up (err:
 * errno; kind "memory" only for ENOMEM, else "network" with the code
 * curl gives when it cannot get a socket).  Stack: [4] the ticket. */
static int start_failed(lua_State *L, int err, const char *what) {
    int oom = err == ENOMEM;
    /* (strerror's buffer may be shared between threads: words of our own) */
    const char *why = err == EMFILE   ? ": too many open files in this process (EMFILE)"
                      : err == ENFILE ? ": too many open files in the system (ENFILE)"
                      : oom           ? ": out of memory (ENOMEM)"
                                      : "";
    ticket_abandon(L, (ticket *)lua_touserdata(L, 4), 4);
    lua_pushnil(L);
    lua_pushfstring(L, "cannot start the transfer: %s%s", what, why);
    lua_pushstring(L, oom ? "memory" : "network");
    lua_pushinteger(L, oom ? CURLE_OUT_OF_MEMORY : CURLE_COULDNT_CONNECT);
    return 4;
}

/* d:start(req, want_meta) -> ticket, or nil, message, kind, code when
 * the transfer cannot be set up (no descriptor, no memory).  Stack: [1]
 * d, [2] req, [3] want_meta. */
static int driver_start(lua_State *L) {
    cz_driver *d = check_driver(L, 1);
    ticket *tk;
    xfer *x;
    int entry, sink, err = 0;
    CURLMcode mc;
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    tk = (ticket *)cz_newuserdata(L, sizeof *tk); /* [4] */
    tk->d = d;
    tk->x = NULL;
    cz_setmetatable(L, TICKET_MT);
    lua_pushvalue(L, 1);
    cz_setuservalue(L, 4);
    /* From here on the ticket's __gc releases whatever was acquired. */
    if ((x = xfer_acquire(d, &err)) == NULL) return start_failed(L, err, "no wake-up descriptor or easy handle");
    tk->x = x;
    x->want_meta = lua_toboolean(L, 3);
    cz_getuservalue(L, 1);      /* [5] the driver's user value */
    lua_createtable(L, 2, 0);   /* [6] { sink, req } */
    entry = lua_gettop(L);
    lua_getfield(L, 5, "handle");
    cz_getuservalue(L, -1);     /* the handle's sink: the model */
    cz_sink_push_copy(L, -1);
    sink = lua_gettop(L);
    lua_pushvalue(L, sink);
    lua_rawseti(L, entry, 1);
    lua_pushvalue(L, 2);
    lua_rawseti(L, entry, 2);
    lua_pushvalue(L, entry);
    x->ref = luaL_ref(L, 5);
    cz_request_set(L, x->easy, 2, d->fixed, d->anonymous, &x->rh);
    {
        /* as get_many does (multi.c): wait for a connection that can
         * multiplex over TLS only; over plain HTTP it would serialize */
        const char *url;
        lua_pushliteral(L, "url");
        lua_rawget(L, 2);
        url = lua_tostring(L, -1);
        cz_setopt_check(L, curl_easy_setopt(x->easy, CURLOPT_PIPEWAIT,
                                            url != NULL && strncmp(url, "https:", 6) == 0 ? 1L : 0L),
                        "CURLOPT_PIPEWAIT");
        lua_pop(L, 1);
    }
    cz_sink_push_decoder(L, sink);
    cz_transfer_reset(&x->t, L, &x->hdrs, cz_sink_check(L, sink), lua_gettop(L));
    mc = curl_multi_add_handle(d->m, x->easy);
    if (mc != CURLM_OK) {
        lua_settop(L, 4);
        return start_failed(L, mc == CURLM_OUT_OF_MEMORY ? ENOMEM : 0, curl_multi_strerror(mc));
    }
    x->in_multi = 1;
    x->state = X_RUNNING;
    lua_settop(L, 4);
    return 1;
}

/* d:watch() -> fds, timeout. */
static int driver_watch(lua_State *L) {
    cz_driver *d = check_driver(L, 1);
    int i;
    lua_createtable(L, d->nw, 0);
    for (i = 0; i < d->nw; i++) {
        int what = d->w[i].what;
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, (lua_Integer)d->w[i].fd);
        lua_setfield(L, -2, "fd");
        lua_pushstring(L, what == CURL_POLL_IN ? "r" : what == CURL_POLL_OUT ? "w" : "rw");
        lua_setfield(L, -2, "events");
        lua_rawseti(L, -2, i + 1);
    }
    if (d->timer_at < 0) {
        lua_pushnil(L);
    } else {
        double left = d->timer_at - cz_clock_monotonic();
        lua_pushnumber(L, left > 0 ? left : 0);
    }
    return 2;
}

/* "r", "w", "rw", ... as CURL_CSELECT_* bits (anything else: 0, curl
 * finds out itself). */
static int mask_of(const char *ev) {
    int mask = 0;
    if (ev == NULL) return 0;
    if (strchr(ev, 'r')) mask |= CURL_CSELECT_IN;
    if (strchr(ev, 'w')) mask |= CURL_CSELECT_OUT;
    if (strchr(ev, 'e')) mask |= CURL_CSELECT_ERR;
    return mask;
}

/* d:step(ready) -> n.  Stack: [1] d, [2] ready (table, nil or false). */
static int driver_step(lua_State *L) {
    cz_driver *d = check_driver(L, 1);
    int i, n = 0, nw, uv, running = 0, use_ready, check_all;
    CURLMcode mc = CURLM_OK;
    watch *snap = NULL;
    xfer *x;

    lua_settop(L, 2);
    use_ready = lua_istable(L, 2);
    check_all = lua_isnil(L, 2);
    cz_getuservalue(L, 1); /* [3] */
    uv = 3;
    d->steps++;
    reap_abandoned(L, d, uv);
    retired_sweep(d);
    for (x = d->live; x != NULL; x = x->next) n++;
    /* Each running transfer's sink and decoder on this stack, where its
     * callbacks find them, plus the room the sinks use without growing. */
    luaL_checkstack(L, 2 * n + 32, "cozmox: too many transfers for the Lua stack");
    for (x = d->live; x != NULL; x = x->next) {
        if (!x->in_multi) continue;
        lua_rawgeti(L, uv, x->ref);
        lua_rawgeti(L, -1, 1);
        lua_remove(L, -2);
        cz_sink_push_decoder(L, -1);
        x->t.L = L;
        x->t.dec_idx = lua_gettop(L);
    }
    /* What to act on, decided before curl runs (the socket callback may
     * change d->w meanwhile). */
    nw = d->nw;
    if (nw > 0) {
        snap = (watch *)malloc((size_t)nw * sizeof *snap);
        if (snap == NULL) return luaL_error(L, "cozmox: out of memory");
        for (i = 0; i < nw; i++) {
            snap[i] = d->w[i];
            snap[i].mask = check_all ? 0 : -1;
            if (use_ready) {
                lua_rawgeti(L, 2, (int)snap[i].fd);
                if (lua_type(L, -1) == LUA_TSTRING) snap[i].mask = mask_of(lua_tostring(L, -1));
                else if (lua_toboolean(L, -1)) snap[i].mask = 0;
                lua_pop(L, 1);
            }
        }
    }
    d->in_curl = 1;
    for (i = 0; i < nw && mc == CURLM_OK; i++) {
        if (snap[i].mask < 0) continue;
        mc = curl_multi_socket_action(d->m, snap[i].fd, snap[i].mask, &running);
        if (mc == CURLM_BAD_SOCKET) mc = CURLM_OK; /* it went meanwhile */
    }
    if (mc == CURLM_OK && (nw == 0 || !use_ready || (d->timer_at >= 0 && d->timer_at <= cz_clock_monotonic())))
        mc = curl_multi_socket_action(d->m, CURL_SOCKET_TIMEOUT, 0, &running);
    d->in_curl = 0;
    free(snap);
    n = collect_done(d);
    reap_abandoned(L, d, uv);
    if (d->oom) {
        d->oom = 0;
        return luaL_error(L, "cozmox: out of memory");
    }
    if (mc != CURLM_OK) return luaL_error(L, "cozmox: curl_multi_socket_action: %s", curl_multi_strerror(mc));
    lua_pushinteger(L, n);
    return 1;
}

/* d:handoff([all]) -> true when a running transfer's owner was woken
 * (all: every one's). */
static int driver_handoff(lua_State *L) {
    cz_driver *d = check_driver(L, 1);
    int all = lua_toboolean(L, 2), woke = 0;
    xfer *x;
    for (x = d->live; x != NULL && (all || !woke); x = x->next) {
        if (x->state == X_RUNNING) {
            wake_signal(x);
            woke = 1;
        }
    }
    lua_pushboolean(L, woke);
    return 1;
}

static int driver_running(lua_State *L) {
    cz_driver *d = (cz_driver *)luaL_checkudata(L, 1, DRIVER_MT);
    xfer *x;
    int n = 0;
    for (x = d->live; x != NULL; x = x->next)
        if (x->state == X_RUNNING) n++;
    lua_pushinteger(L, n);
    return 1;
}

static int driver_tostring(lua_State *L) {
    cz_driver *d = (cz_driver *)luaL_checkudata(L, 1, DRIVER_MT);
    lua_pushfstring(L, "cozmox.curl.driver (%s)", d->closed ? "closed" : "open");
    return 1;
}

/* ------------------------------------------------------------ tickets */

/* The ticket at idx with its transfer (raises for a spent one). */
static ticket *check_ticket(lua_State *L, int idx) {
    ticket *tk = (ticket *)luaL_checkudata(L, idx, TICKET_MT);
    if (tk->x == NULL || tk->d->gone) luaL_argerror(L, idx, "transfer already finished");
    return tk;
}

/* Give the transfer up: out of the multi now unless curl is running,
 * then at the end of that step.  Stack: [idx] the ticket. */
static void ticket_abandon(lua_State *L, ticket *tk, int idx) {
    xfer *x = tk->x;
    cz_driver *d = tk->d;
    tk->x = NULL;
    if (x == NULL || d->gone) return;
    /* One that ever ran may still be watched for the lost owner: retired.
     * One that never started goes back to the pool. */
    if (x->state != X_IDLE) x->state = X_ABANDONED;
    if (d->in_curl) {
        wake_signal(x);
        return;
    }
    cz_getuservalue(L, idx);     /* the driver */
    cz_getuservalue(L, -1);      /* its user value */
    xfer_release(L, d, lua_gettop(L), x);
    lua_pop(L, 2);
}

static int ticket_gc(lua_State *L) {
    ticket *tk = (ticket *)luaL_checkudata(L, 1, TICKET_MT);
    lua_settop(L, 1);
    ticket_abandon(L, tk, 1);
    return 0;
}

static int ticket_cancel(lua_State *L) {
    ticket *tk = (ticket *)luaL_checkudata(L, 1, TICKET_MT);
    if (tk->d->in_curl) return luaL_error(L, "cozmox: a transfer cannot be cancelled from inside a transfer");
    lua_settop(L, 1);
    ticket_abandon(L, tk, 1);
    return 0;
}

static int ticket_done(lua_State *L) {
    ticket *tk = check_ticket(L, 1);
    lua_pushboolean(L, tk->x->state == X_DONE);
    return 1;
}

static int ticket_fd(lua_State *L) {
    ticket *tk = check_ticket(L, 1);
    lua_pushinteger(L, tk->x->wake_r);
    return 1;
}

static int ticket_drain(lua_State *L) {
    wake_drain(check_ticket(L, 1)->x);
    return 0;
}

/* (a spent ticket: nothing to wake) */
static int ticket_signal(lua_State *L) {
    ticket *tk = (ticket *)luaL_checkudata(L, 1, TICKET_MT);
    if (tk->x != NULL && !tk->d->gone) wake_signal(tk->x);
    return 0;
}

/* x:finish() -> record.  Stack: [1] ticket. */
static int ticket_finish(lua_State *L) {
    ticket *tk = check_ticket(L, 1);
    xfer *x = tk->x;
    cz_driver *d = tk->d;
    int status;
    if (x->state != X_DONE) return luaL_error(L, "cozmox: the transfer has not finished");
    if (d->in_curl) return luaL_error(L, "cozmox: a transfer cannot be finished from inside a transfer");
    lua_settop(L, 1);
    cz_getuservalue(L, 1);        /* [2] driver */
    cz_getuservalue(L, 2);        /* [3] its user value */
    lua_rawgeti(L, 3, x->ref);    /* [4] { sink, req } */
    lua_rawgeti(L, 4, 1);         /* [5] sink */
    cz_sink_push_decoder(L, 5);   /* [6] */
    cz_transfer_push_recorder(L); /* [7] */
    luaL_checkstack(L, 24, "cozmox: Lua stack exhausted");
    x->t.L = L;
    x->t.dec_idx = 6;
    status = cz_transfer_record_pcall(L, 7, &x->t, x->rc, x->want_meta);
    tk->x = NULL;
    xfer_release(L, d, 3, x);
    if (status != 0) return lua_error(L);
    return 1;
}

static int ticket_tostring(lua_State *L) {
    ticket *tk = (ticket *)luaL_checkudata(L, 1, TICKET_MT);
    const char *what = tk->x == NULL ? "finished" : tk->x->state == X_DONE ? "done" : "running";
    lua_pushfstring(L, "cozmox.curl.transfer (%s)", what);
    return 1;
}

static const luaL_Reg driver_methods[] = {
    {"start", driver_start},
    {"watch", driver_watch},
    {"step", driver_step},
    {"handoff", driver_handoff},
    {"running", driver_running},
    {"close", driver_close},
    {NULL, NULL}};

static const luaL_Reg ticket_methods[] = {
    {"done", ticket_done},
    {"fd", ticket_fd},
    {"drain", ticket_drain},
    {"signal", ticket_signal},
    {"finish", ticket_finish},
    {"cancel", ticket_cancel},
    {NULL, NULL}};

void cz_driver_register(lua_State *L) {
    cz_class(L, DRIVER_MT, driver_methods, driver_gc, driver_tostring);
    cz_class(L, TICKET_MT, ticket_methods, ticket_gc, ticket_tostring);
}
