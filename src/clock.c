/* clock.c -- sleeping and measuring time (clock.h). */
#include <errno.h>
#include <time.h>
#include "compat.h"
#include "clock.h"

int cz_clock_sleep(lua_State *L) {
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec ts, rem;
    luaL_argcheck(L, s >= 0 && s <= 86400.0 * 365, 1, "seconds out of range");
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
    if (ts.tv_nsec > 999999999L) ts.tv_nsec = 999999999L;
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR) ts = rem;
    return 0;
}

double cz_clock_monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cz_clock_now(lua_State *L) {
    lua_pushnumber(L, (lua_Number)cz_clock_monotonic());
    return 1;
}
