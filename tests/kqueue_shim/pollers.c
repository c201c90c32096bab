/* pollers.c -- the kqueue shim build's pollers (replacing
 * ext/posix/pollers_linux.c): kqueue first, so that EventSet's default and
 * every GroupSet and mpoint.aio wait run on ext/posix/kqueue_darwin.c. */
#include "../../ext/poller.h"

extern const mp_poller_t mp__poller_kqueue;
extern const mp_poller_t mp__poller_epoll;
extern const mp_poller_t mp__poller_poll;
const mp_poller_t *const mp__pollers[] = {&mp__poller_kqueue, &mp__poller_epoll,
                                          &mp__poller_poll, NULL};
