/* clock.h -- sleeping and measuring time without signals. */
#ifndef COZMOX_CLOCK_H
#define COZMOX_CLOCK_H

#include <lua.h>

/* sleep(seconds): blocks the calling thread (nanosleep, resumed after
 * signal interruptions).  The default sleep between retries. */
int cz_clock_sleep(lua_State *L);
/* now() -> seconds on a monotonic clock, for durations. */
int cz_clock_now(lua_State *L);
/* The same clock in C (seconds); the loop driver's timer uses it, so its
 * instants compare with core.now()'s. */
double cz_clock_monotonic(void);

#endif
