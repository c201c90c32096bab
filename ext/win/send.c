/* send.c -- batch send on Windows: WSASendTo per datagram (WSASend for the
 * connected peer), one WSABUF over the caller's buffer (no copy), until
 * all are sent or one fails.  The socket's mode decides whether a full
 * send buffer blocks (blocking socket) or fails with WSAEWOULDBLOCK. */
#include "win.h"

/* An error after some datagrams were sent is not reported: the count is,
 * and the next send meets the error again. */
long mp__send_batch(mp_sock_t s, const mp_sendbuf_t *bufs, size_t n,
                    const struct sockaddr_storage *to, mp_socklen_t tolen)
{
    size_t done;

    for (done = 0; done < n; done++) {
        WSABUF buf;
        DWORD sent = 0;
        int rc;

        buf.buf = (char *)bufs[done].base;
        buf.len = (ULONG)bufs[done].len;
        rc = to != NULL
            ? WSASendTo(s, &buf, 1, &sent, 0, (const struct sockaddr *)to, tolen, NULL, NULL)
            : WSASend(s, &buf, 1, &sent, 0, NULL, NULL);
        if (rc == SOCKET_ERROR)
            break;
    }
    return done == 0 ? -1 : (long)done;
}

/* WSAPoll for room: 1 writable (or in error, which the next send reports),
 * 0 timed out, -1 with the Winsock code.  Never WSAEINTR (signals do not
 * interrupt Winsock waits): callers wait in slices for Ctrl+C. */
int mp__wait_writable(mp_sock_t s, int timeout_ms)
{
    WSAPOLLFD p;
    int rc;

    p.fd = s;
    p.events = POLLWRNORM;
    p.revents = 0;
    rc = WSAPoll(&p, 1, timeout_ms);
    if (rc == SOCKET_ERROR)
        return -1;
    return rc > 0 ? 1 : 0;
}
