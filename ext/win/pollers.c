/* pollers.c -- the pollers of Windows, best first: EventSet's default is
 * the first (poller.h).  wsaevent sees a registration made while another
 * thread waits; wsapoll only at the next wait, as poll.c. */
#include "../poller.h"

extern const mp_poller_t mp__poller_wsaevent;
extern const mp_poller_t mp__poller_wsapoll;
const mp_poller_t *const mp__pollers[] = {&mp__poller_wsaevent, &mp__poller_wsapoll, NULL};
