/* reference.c -- the C reference loops of reference.h that receive, on
 * Windows: WSARecvMsg in a loop (Winsock has no recvmmsg) and WSAPoll (it
 * has no epoll; WSAPoll is poll(2)'s shape, O(sockets) per wait). */
#include <stdlib.h>
#include <string.h>

#include "win/win.h"
#include "reference.h"

static volatile long long sink;   /* keeps the metadata reads from being optimised away */

static void read_control(WSAMSG *m)
{
    WSACMSGHDR *c;

    /* Each read checks cmsg_len first: a truncated message carries less. */
    for (c = WSA_CMSG_FIRSTHDR(m); c != NULL; c = WSA_CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
            c->cmsg_len >= WSA_CMSG_LEN(sizeof(IN_PKTINFO)))
            sink += ((IN_PKTINFO *)WSA_CMSG_DATA(c))->ipi_ifindex;
        else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                 c->cmsg_len >= WSA_CMSG_LEN(sizeof(IN6_PKTINFO)))
            sink += ((IN6_PKTINFO *)WSA_CMSG_DATA(c))->ipi6_ifindex;
        else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == MP_WIN_SO_TIMESTAMP &&
                 c->cmsg_len >= WSA_CMSG_LEN(sizeof(UINT64)))
            sink += (long long)*(UINT64 *)WSA_CMSG_DATA(c);
    }
}

/* socks are non-blocking (reference.h): Winsock has no MSG_DONTWAIT, so a
 * blocking socket would wait here for its next datagram.  One datagram per
 * call, so vlen is unused; pktinfo 2 asks for SIO_TIMESTAMPING, which most
 * systems do not honour (see batch.c). */
long long mp_ref_drain(const mp_sock_t *socks, int nsocks, int vlen, int size, int pktinfo,
                       long long *received)
{
    union {
        WSACMSGHDR align;
        UINT64 align64;
        char buf[128];
    } control;
    char *data;
    LPFN_WSARECVMSG recvmsg = NULL;
    long long start, total = 0;
    int k, failed = 0;

    (void)vlen;
    if (mp__win_startup() < 0)
        return -1;
    if (nsocks > 0 && (recvmsg = mp__win_recvmsg(socks[0])) == NULL)
        return -1;
    data = malloc(size > 0 ? (size_t)size : 1);
    if (data == NULL) {
        WSASetLastError(WSAENOBUFS);
        return -1;
    }
    for (k = 0; k < nsocks && pktinfo; k++) {
        struct sockaddr_storage ss;
        int len = (int)sizeof(ss);
        ss.ss_family = AF_INET;
        getsockname(socks[k], (struct sockaddr *)&ss, &len);
        mp__win_pktinfo_on(socks[k], ss.ss_family);
        if (pktinfo > 1)
            mp__win_timestamps_on(socks[k]);
    }
    start = mp__win_ticks();
    for (k = 0; k < nsocks && !failed; k++) {
        for (;;) {
            struct sockaddr_storage name;
            WSABUF buf;
            WSAMSG m;
            DWORD n = 0;

            buf.buf = data;
            buf.len = (ULONG)size;
            memset(&m, 0, sizeof(m));
            m.name = (struct sockaddr *)&name;
            m.namelen = (INT)sizeof(name);
            m.lpBuffers = &buf;
            m.dwBufferCount = 1;
            if (pktinfo) {
                m.Control.buf = control.buf;
                m.Control.len = (ULONG)sizeof(control.buf);
            }
            if (recvmsg(socks[k], &m, &n, NULL, NULL) == SOCKET_ERROR &&
                WSAGetLastError() != WSAEMSGSIZE) {         /* truncated: still a datagram */
                if (WSAGetLastError() != WSAEWOULDBLOCK)
                    failed = WSAGetLastError();
                break;
            }
            if (pktinfo)                        /* read the metadata, as a user would */
                read_control(&m);
            total++;
        }
    }
    start = mp__win_ticks_to_ns(mp__win_ticks() - start);
    free(data);
    if (failed) {
        WSASetLastError(failed);
        return -1;
    }
    *received = total;
    return start;
}

/* WSAPoll where Linux has epoll_wait: WSAPoll keeps no state, so the array
 * is the set, built once before the timed loop. */
long long mp_ref_wakeups(mp_sock_t tx, mp_sock_t rx, const mp_sock_t *idle, int nidle,
                         int rounds)
{
    WSAPOLLFD *set;
    char buf[64];
    long long start;
    int i, saved;

    if (mp__win_startup() < 0)
        return -1;
    set = calloc((size_t)nidle + 1, sizeof(*set));
    if (set == NULL) {
        WSASetLastError(WSAENOBUFS);
        return -1;
    }
    for (i = 0; i <= nidle; i++) {
        set[i].fd = i < nidle ? idle[i] : rx;
        set[i].events = POLLRDNORM;
    }
    start = mp__win_ticks();
    for (i = 0; i < rounds; i++) {
        if (send(tx, "x", 1, 0) == SOCKET_ERROR ||
            WSAPoll(set, (ULONG)nidle + 1, -1) < 1 ||
            recv(rx, buf, sizeof(buf), 0) == SOCKET_ERROR)
            goto fail;
    }
    start = mp__win_ticks_to_ns(mp__win_ticks() - start);
    free(set);
    return start;
fail:
    saved = WSAGetLastError();
    free(set);
    WSASetLastError(saved);
    return -1;
}

long long mp_ref_send_batches(mp_sock_t s, const mp_join_t *dest, int size, int vlen,
                              int duration_ms, long long *sent)
{
    WSABUF buf;
    char *data;
    long long start, end, total = 0, now;
    int i;

    if (size < 1 || size > 65507 || vlen < 1 || vlen > 1024 || duration_ms < 0) {
        WSASetLastError(WSAEINVAL);
        return -1;
    }
    data = malloc((size_t)size);
    if (data == NULL) {
        WSASetLastError(WSAENOBUFS);
        return -1;
    }
    memset(data, 's', (size_t)size);
    buf.buf = data;
    buf.len = (ULONG)size;
    start = mp__win_ticks_to_ns(mp__win_ticks());
    end = start + (long long)duration_ms * 1000000LL;
    do {
        for (i = 0; i < vlen; i++) {
            DWORD n = 0;
            if (WSASendTo(s, &buf, 1, &n, 0, (const struct sockaddr *)&dest->group,
                          dest->group_len, NULL, NULL) == 0) {
                total++;
            } else if (WSAGetLastError() != WSAENOBUFS && WSAGetLastError() != WSAEWOULDBLOCK) {
                int saved = WSAGetLastError();
                free(data);
                WSASetLastError(saved);
                return -1;
            }
        }
        now = mp__win_ticks_to_ns(mp__win_ticks());
    } while (now < end);
    free(data);
    *sent = total;
    return now - start;
}
