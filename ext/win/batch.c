/* batch.c -- batch receive on Windows: WSARecvMsg, one datagram per call,
 * until nothing more is queued or the batch is full.  Each datagram's
 * control data is read before the next receive, so one control buffer on
 * the stack serves them all and the batch needs no scratch (as
 * posix/batch_darwin.c).
 *
 * Never blocking, one call per datagram.  Winsock has no MSG_DONTWAIT, and
 * the blocking mode of a socket cannot be read back (FIONBIO only sets it;
 * WSAEventSelect forces it), so the caller says it (mp_batch_t.may_block):
 * a non-blocking socket is received from directly until WSAEWOULDBLOCK; one
 * that may be blocking is made non-blocking (FIONBIO 1) for the receive and
 * blocking again (FIONBIO 0) after it: two calls per batch, not per
 * datagram.  A datagram another thread takes meanwhile then only makes
 * this receive answer WSAEWOULDBLOCK (the caller waits, and receives
 * again); it can never leave it blocked, as a poll-then-receive could.
 * Contract: while a receive runs on a blocking socket, another thread's
 * receive on it may see WSAEWOULDBLOCK (one receiver per socket at a time).
 */
#include <string.h>

#include "win.h"
#include "../batch_platform.h"

/* Room for one datagram's control data: a pktinfo of either family and a
 * timestamp, plus slack for others the socket may have been asked for. */
#define MP_WIN_CMSG_ROOM \
    (WSA_CMSG_SPACE(sizeof(IN6_PKTINFO)) + WSA_CMSG_SPACE(sizeof(UINT64)) + 64)

static INIT_ONCE recvmsg_once = INIT_ONCE_STATIC_INIT;
static LPFN_WSARECVMSG recvmsg_fn;

static BOOL CALLBACK fetch_recvmsg(PINIT_ONCE once, PVOID param, PVOID *context)
{
    GUID id = WSAID_WSARECVMSG;
    LPFN_WSARECVMSG fn = NULL;
    DWORD bytes = 0;

    (void)once;
    (void)context;
    if (WSAIoctl(*(SOCKET *)param, SIO_GET_EXTENSION_FUNCTION_POINTER, &id, sizeof(id),
                 &fn, sizeof(fn), &bytes, NULL, NULL) == SOCKET_ERROR || fn == NULL)
        return FALSE;
    recvmsg_fn = fn;
    return TRUE;
}

/* Extension functions belong to a provider; every IP datagram socket mpoint
 * sees is the Microsoft provider's (or Wine's), so the first answer serves
 * them all. */
LPFN_WSARECVMSG mp__win_recvmsg(SOCKET s)
{
    if (!InitOnceExecuteOnce(&recvmsg_once, fetch_recvmsg, &s, NULL)) {
        if (WSAGetLastError() == 0)
            WSASetLastError(WSAEOPNOTSUPP);
        return NULL;
    }
    return recvmsg_fn;
}

int mp__batch_platform_new(mp_batch_t *b)
{
    b->platform = NULL;
    return 0;
}

void mp__batch_platform_free(mp_batch_t *b)
{
    (void)b;
}

/* IP_PKTINFO / IPV6_PKTINFO: each datagram's header destination address --
 * the group -- and arriving interface, in an IN_PKTINFO / IN6_PKTINFO. */
int mp__win_pktinfo_on(SOCKET s, int family)
{
    DWORD one = 1;
    int rc = family == AF_INET
        ? setsockopt(s, IPPROTO_IP, IP_PKTINFO, (const char *)&one, sizeof(one))
        : setsockopt(s, IPPROTO_IPV6, IPV6_PKTINFO, (const char *)&one, sizeof(one));

    return rc == SOCKET_ERROR ? -1 : 0;
}

/* SIO_TIMESTAMPING (newer Windows 10 and 11) asks for receive timestamps.
 * Older systems do not know it, Wine 8 answers WSAEOPNOTSUPP, and even where
 * the socket accepts it Windows stamps datagrams only if timestamping is
 * also enabled system-wide; so it is best effort, and a datagram without a
 * timestamp reports 0, mpoint.h's "none" (mp_groupset_recv then uses the
 * time of the receive call, as on any platform without them). */
int mp__win_timestamps_on(SOCKET s)
{
    mp_win_timestamping_config_t config;
    DWORD bytes = 0;

    memset(&config, 0, sizeof(config));
    config.flags = MP_WIN_TIMESTAMPING_FLAG_RX;
    return WSAIoctl(s, MP_WIN_SIO_TIMESTAMPING, &config, sizeof(config), NULL, 0, &bytes,
                    NULL, NULL) == SOCKET_ERROR ? -1 : 0;
}

int mp__batch_enable_metadata(mp_sock_t s, int family)
{
    if (mp__win_pktinfo_on(s, family) < 0)
        return -1;
    mp__win_timestamps_on(s);       /* best effort, see above */
    return 0;
}

/* WSAPoll on one socket: 1 readable (or in error, which the next receive
 * reports), 0 timed out, -1 with the Winsock code.  Never WSAEINTR: CPython
 * does not interrupt Winsock waits with signals, so a long wait should be
 * made of slices by a caller that wants Ctrl+C. */
int mp__batch_wait_readable(mp_sock_t s, int timeout_ms)
{
    WSAPOLLFD p;
    int rc;

    p.fd = s;
    p.events = POLLRDNORM;
    p.revents = 0;
    rc = WSAPoll(&p, 1, timeout_ms);
    if (rc == SOCKET_ERROR)
        return -1;
    return rc > 0 ? 1 : 0;
}

/* Software timestamps count QueryPerformanceCounter ticks.  The receive
 * keeps them as they come and turns them into wall-clock ns afterwards, by
 * their age against one (ticks, wall clock) pair read after the last
 * datagram: each age is exact, the pair's own skew is the time between two
 * calls.  A hardware timestamp (a NIC's clock, when the system is set up for
 * it) would need CaptureInterfaceHardwareCrossTimestamp; one that claims to
 * come from the future is reported as none. */
static void convert_timestamps(mp_batch_t *b, size_t start, size_t end)
{
    int64_t ticks = mp__win_ticks(), wall = mp__realtime_ns();
    size_t i;

    for (i = start; i < end; i++) {
        int64_t stamp = b->timestamps[i];
        if (stamp != 0)
            b->timestamps[i] = stamp > ticks ? 0 : wall - mp__win_ticks_to_ns(ticks - stamp);
    }
}

/* One control message's metadata into datagram i.  The group is ipi_addr,
 * the destination address of the datagram's header. */
static void keep_control(mp_batch_t *b, size_t i, const WSACMSGHDR *c, int *stamped)
{
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
        c->cmsg_len >= WSA_CMSG_LEN(sizeof(IN_PKTINFO))) {
        IN_PKTINFO pi;
        struct sockaddr_in *g = (struct sockaddr_in *)&b->groups[i];
        memcpy(&pi, WSA_CMSG_DATA(c), sizeof(pi));
        g->sin_family = AF_INET;
        g->sin_addr = pi.ipi_addr;
        b->ifindex[i] = (uint32_t)pi.ipi_ifindex;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
               c->cmsg_len >= WSA_CMSG_LEN(sizeof(IN6_PKTINFO))) {
        IN6_PKTINFO pi6;
        struct sockaddr_in6 *g = (struct sockaddr_in6 *)&b->groups[i];
        memcpy(&pi6, WSA_CMSG_DATA(c), sizeof(pi6));
        g->sin6_family = AF_INET6;
        g->sin6_addr = pi6.ipi6_addr;
        b->ifindex[i] = (uint32_t)pi6.ipi6_ifindex;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == MP_WIN_SO_TIMESTAMP &&
               c->cmsg_len >= WSA_CMSG_LEN(sizeof(UINT64))) {
        UINT64 stamp;
        memcpy(&stamp, WSA_CMSG_DATA(c), sizeof(stamp));
        b->timestamps[i] = (int64_t)(stamp & 0x7fffffffffffffffULL);   /* ticks, for now */
        *stamped = 1;
    }
}

/* Records datagram i as WSARecvMsg left it in msg (posix/batch.c's
 * mp__batch_keep): len payload bytes kept, truncation, the sender, and the
 * control data (a timestamp still in ticks: convert_timestamps). */
static void keep(mp_batch_t *b, size_t i, size_t len, WSAMSG *msg, int truncated,
                 int *stamped)
{
    WSACMSGHDR *c;
    size_t room = sizeof(b->sources[i]);
    size_t namelen = msg->namelen <= 0 ? 0 : (size_t)msg->namelen < room ? (size_t)msg->namelen : room;

    b->sizes[i] = (uint32_t)(len < b->max_size ? len : b->max_size);
    b->truncated[i] = truncated || (msg->dwFlags & MSG_TRUNC) != 0;
    /* Winsock wrote namelen bytes of the sender; a longer address from an
     * earlier receive must not show through. */
    memset((unsigned char *)&b->sources[i] + namelen, 0, room - namelen);
    memset(&b->groups[i], 0, sizeof(b->groups[i]));
    b->ifindex[i] = 0;
    b->timestamps[i] = 0;
    if (!b->metadata)
        return;
    for (c = WSA_CMSG_FIRSTHDR(msg); c != NULL; c = WSA_CMSG_NXTHDR(msg, c))
        keep_control(b, i, c, stamped);
}

static int set_nonblocking(SOCKET s, u_long on)
{
    return ioctlsocket(s, FIONBIO, &on) == SOCKET_ERROR ? -1 : 0;
}

/* An error after some datagrams arrived is not reported: the datagrams are,
 * and a lasting error shows again on the next receive. */
int mp__batch_recv(mp_sock_t s, mp_batch_t *b)
{
    union {
        WSACMSGHDR align;
        UINT64 align64;
        char buf[MP_WIN_CMSG_ROOM];
    } control;
    LPFN_WSARECVMSG recvmsg = mp__win_recvmsg(s);
    size_t start = b->count, got;
    int err = 0, stamped = 0;

    if (recvmsg == NULL)
        return -1;
    if (b->may_block && set_nonblocking(s, 1) < 0)
        return -1;
    for (got = start; got < b->max_datagrams; got++) {
        WSABUF data;
        WSAMSG msg;
        DWORD n = 0;
        int truncated = 0;

        data.buf = (char *)(b->data + got * b->max_size);
        data.len = (ULONG)b->max_size;
        memset(&msg, 0, sizeof(msg));
        msg.name = (struct sockaddr *)&b->sources[got];
        msg.namelen = (INT)sizeof(b->sources[got]);
        msg.lpBuffers = &data;
        msg.dwBufferCount = 1;
        /* Always room for control data, even when the batch ignores it: a
         * socket with IP_PKTINFO on and no room fails the receive on Wine
         * (WSAEMSGSIZE, MSG_CTRUNC), where POSIX only flags MSG_CTRUNC. */
        msg.Control.buf = control.buf;
        msg.Control.len = (ULONG)sizeof(control.buf);
        if (recvmsg(s, &msg, &n, NULL, NULL) == SOCKET_ERROR) {
            /* A datagram longer than the buffer: the buffer holds its start,
             * the rest is discarded (WSAEMSGSIZE, "for unreliable protocols
             * only"), and it counts as received.  The byte count is not
             * relied on (Wine leaves it untouched, and MSG_TRUNC unset). */
            err = WSAGetLastError();
            if (err != WSAEMSGSIZE)
                break;          /* WSAEWOULDBLOCK: nothing more queued */
            n = (DWORD)b->max_size;
            truncated = 1;
        }
        keep(b, got, (size_t)n, &msg, truncated, &stamped);
    }
    if (b->may_block)
        set_nonblocking(s, 0);     /* fails only for a socket just closed */
    if (got == start) {
        WSASetLastError(err);
        return -1;
    }
    if (stamped)
        convert_timestamps(b, start, got);
    b->count = got;
    return (int)(got - start);
}
