/* pollers.c -- the pollers of Windows, best first: EventSet's default is
 * the first (poller.h). */
#include "../poller.h"

extern const mp_poller_t mp__poller_wsaevent;
const mp_poller_t *const mp__pollers[] = {&mp__poller_wsaevent, NULL};
