/* send.c -- batch send on POSIX, the part every OS shares: waiting for
 * room with poll(2).  The sending itself is per OS (send_linux.c:
 * sendmmsg; send_darwin.c: a sendmsg loop). */
#include <poll.h>

#include "posix.h"

/* 1 writable (or in error, which the next send reports), 0 timed out, -1
 * with errno (EINTR included: the caller retries, PEP 475). */
int mp__wait_writable(mp_sock_t s, int timeout_ms)
{
    struct pollfd p;

    p.fd = s;
    p.events = POLLOUT;
    p.revents = 0;
    return poll(&p, 1, timeout_ms);
}
