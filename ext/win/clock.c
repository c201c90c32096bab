/* clock.c -- the shaper's clock on Windows (mp_platform.h):
 * QueryPerformanceCounter, and Sleep in whole ms (rounded up, so a wait
 * never ends before its time; the system timer's granularity, up to
 * 15.6 ms, may lengthen it: the token bucket then sends what accrued
 * meanwhile, and the average rate holds while the bucket can hold it). */
#include "win.h"

uint64_t mp__monotonic_ns(void)
{
    return (uint64_t)mp__win_ticks_to_ns(mp__win_ticks());
}

int mp__sleep_ns(uint64_t ns)
{
    uint64_t ms = ns / 1000000u + (ns % 1000000u != 0);

    Sleep(ms > 0x7fffffffu ? 0x7fffffffu : (DWORD)ms);
    return 0;
}
