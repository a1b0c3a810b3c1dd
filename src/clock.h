/* clock.h -- sleeping and measuring time without signals. */
#ifndef COZMOX_CLOCK_H
#define COZMOX_CLOCK_H

#include <lua.h>

/* sleep(seconds): blocks the calling thread (nanosleep, resumed after
 * signal interruptions).  The default sleep between retries. */
int cz_clock_sleep(lua_State *L);
/* now() -> seconds on a monotonic clock, for durations. */
int cz_clock_now(lua_State *L);

#endif
