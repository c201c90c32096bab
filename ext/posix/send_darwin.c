/* send_darwin.c -- batch send on macOS, which has no public sendmmsg:
 * sendmsg(2) per datagram, one iovec over the caller's buffer (no copy),
 * until all are sent or one fails. */
#include <string.h>
#include <sys/uio.h>

#include "posix.h"

/* An error after some datagrams were sent is not reported: the count is,
 * and the next send meets the error again. */
long mp__send_batch(mp_sock_t s, const mp_sendbuf_t *bufs, size_t n,
                    const struct sockaddr_storage *to, mp_socklen_t tolen)
{
    struct msghdr msg;
    struct iovec iov;
    size_t done;

    memset(&msg, 0, sizeof(msg));
    msg.msg_name = (void *)to;
    msg.msg_namelen = (socklen_t)tolen;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    for (done = 0; done < n; done++) {
        iov.iov_base = (void *)bufs[done].base;
        iov.iov_len = bufs[done].len;
        if (sendmsg(s, &msg, 0) < 0)
            break;
    }
    return done == 0 ? -1 : (long)done;
}
