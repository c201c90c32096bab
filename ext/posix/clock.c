/* clock.c -- the shaper's clock on POSIX (mp_platform.h): CLOCK_MONOTONIC
 * (Linux; macOS 10.12 and later) and nanosleep(2). */
#include <errno.h>
#include <time.h>

#include "posix.h"

uint64_t mp__monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One nanosleep: a signal ends it early with EINTR, for the caller to run
 * the handlers and sleep again for what is left (it reads the clock). */
int mp__sleep_ns(uint64_t ns)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    return nanosleep(&ts, NULL);
}
