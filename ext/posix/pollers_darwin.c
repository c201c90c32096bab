/* pollers_darwin.c -- the pollers of this OS, best first: EventSet's default
 * is the first.  A file of its own so that a test build can list another
 * set (tests/kqueue_shim/pollers.c). */
#include "../poller.h"

extern const mp_poller_t mp__poller_kqueue;
extern const mp_poller_t mp__poller_poll;
const mp_poller_t *const mp__pollers[] = {&mp__poller_kqueue, &mp__poller_poll, NULL};
