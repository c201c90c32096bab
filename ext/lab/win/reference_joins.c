/* reference_joins.c -- the C join, leave, close and sender loops of
 * reference.h on Windows: socket options in a plain loop, as a careful C
 * program would.  The memberships are join.c's own socket-option calls
 * (MCAST_JOIN_GROUP, or the per-family options where the provider lacks
 * it), never the native WSAJoinLeaf. */
#include <stdlib.h>
#include <string.h>

#include "win/win.h"
#include "reference.h"

static long long mono_ns(void)
{
    return mp__win_ticks_to_ns(mp__win_ticks());
}

/* What a C receiver of several groups per socket needs: the port shared,
 * each datagram's destination group (IP_PKTINFO), and the sockets watched
 * together -- here WSAEventSelect on one event, the Winsock counterpart of
 * adding them to an epoll set.  Windows delivers a group only to the
 * sockets that joined it, so there is no cross-talk to turn off. */
static int open_sockets(int family, unsigned short port, size_t count, SOCKET *socks,
                        WSAEVENT ev, int timestamps)
{
    size_t i;

    for (i = 0; i < count; i++) {
        DWORD one = 1;
        socks[i] = WSASocketW(family, SOCK_DGRAM, IPPROTO_UDP, NULL, 0,
                              WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
        if (socks[i] == INVALID_SOCKET ||
            setsockopt(socks[i], SOL_SOCKET, SO_REUSEADDR, (const char *)&one,
                       sizeof(one)) == SOCKET_ERROR ||
            mp__bind_port(socks[i], family, port) < 0 || mp__win_pktinfo_on(socks[i], family) < 0 ||
            WSAEventSelect(socks[i], ev, FD_READ) == SOCKET_ERROR)
            return -1;
        if (timestamps)
            mp__win_timestamps_on(socks[i]);    /* best effort, as a shard's */
    }
    return 0;
}

static int join_all(int family, const mp_join_t *reqs, size_t n, size_t per, const SOCKET *socks)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (mp__add_membership(socks[i / per], family, &reqs[i]) < 0)
            return -1;
    return 0;
}

int mp_ref_joins(int family, unsigned short port, const mp_join_t *reqs, size_t n,
                 size_t per_socket, int newest_first, int timestamps, long long out[3])
{
    size_t per = per_socket == 0 || per_socket > n ? (n ? n : 1) : per_socket;
    size_t nsock = n ? (n + per - 1) / per : 0, i, opened = 0;
    SOCKET *socks;
    WSAEVENT ev = WSA_INVALID_EVENT;
    long long t;
    int rc = -1, saved;

    if (mp__win_startup() < 0)
        return -1;
    socks = calloc(nsock ? nsock : 1, sizeof(*socks));
    if (socks == NULL) {
        WSASetLastError(WSAENOBUFS);
        return -1;
    }
    for (i = 0; i < nsock; i++)
        socks[i] = INVALID_SOCKET;
    if ((ev = WSACreateEvent()) == WSA_INVALID_EVENT)
        goto out;
    t = mono_ns();                  /* joining n groups includes making their sockets */
    opened = nsock;
    if (open_sockets(family, port, nsock, socks, ev, timestamps) < 0 ||
        join_all(family, reqs, n, per, socks) < 0)
        goto out;
    out[0] = mono_ns() - t;
    t = mono_ns();
    for (i = 0; i < n; i++) {
        size_t k = newest_first ? n - 1 - i : i;
        if (mp__drop_membership(socks[k / per], family, &reqs[k]) < 0)
            goto out;
    }
    out[1] = mono_ns() - t;
    if (join_all(family, reqs, n, per, socks) < 0)
        goto out;
    t = mono_ns();
    for (i = 0; i < nsock; i++)
        closesocket(socks[newest_first ? nsock - 1 - i : i]);
    out[2] = mono_ns() - t;
    opened = 0;
    rc = 0;
out:
    saved = WSAGetLastError();
    for (i = 0; i < opened; i++)
        if (socks[i] != INVALID_SOCKET)
            closesocket(socks[i]);
    if (ev != WSA_INVALID_EVENT)
        WSACloseEvent(ev);
    free(socks);
    WSASetLastError(saved);
    return rc;
}

/* A socket as mpoint.socket() makes it: SO_REUSEADDR, IPv6-only. */
static SOCKET leaf_socket(int family)
{
    DWORD one = 1;
    SOCKET s = WSASocketW(family, SOCK_DGRAM, IPPROTO_UDP, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    int saved;

    if (s == INVALID_SOCKET)
        return s;
    if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, (const char *)&one, sizeof(one)) == SOCKET_ERROR ||
        (family == AF_INET6 &&
         setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, (const char *)&one, sizeof(one)) == SOCKET_ERROR)) {
        saved = WSAGetLastError();
        closesocket(s);
        WSASetLastError(saved);
        return INVALID_SOCKET;
    }
    return s;
}

int mp_ref_leaf_joins(int family, unsigned short port, const mp_join_t *reqs, size_t n,
                      int made_in_loop, long long *out)
{
    SOCKET *socks;
    size_t i, opened = 0;
    long long t;
    int rc = -1, saved;

    if (mp__win_startup() < 0)
        return -1;
    if ((socks = calloc(n ? n : 1, sizeof(*socks))) == NULL) {
        WSASetLastError(WSAENOBUFS);
        return -1;
    }
    if (!made_in_loop)
        for (opened = 0; opened < n; opened++)
            if ((socks[opened] = leaf_socket(family)) == INVALID_SOCKET)
                goto out;
    t = mono_ns();
    for (i = 0; i < n; i++) {
        if (made_in_loop) {
            if ((socks[i] = leaf_socket(family)) == INVALID_SOCKET)
                goto out;
            opened++;
        }
        if (mp__bind_port(socks[i], family, port) < 0 ||
            mp__add_membership(socks[i], family, &reqs[i]) < 0)
            goto out;
    }
    *out = mono_ns() - t;
    rc = 0;
out:
    saved = WSAGetLastError();
    for (i = opened; i > 0; i--)
        if (socks[i - 1] != INVALID_SOCKET)
            closesocket(socks[i - 1]);
    free(socks);
    WSASetLastError(saved);
    return rc;
}

/* A full send buffer (WSAENOBUFS) or a non-blocking socket that would block
 * drops the datagram and goes on, as the POSIX loop does. */
long long mp_ref_send_round_robin(mp_sock_t s, const mp_join_t *groups, size_t n, int size,
                                  int duration_ms)
{
    char buf[2048];
    long long end, sent = 0;
    size_t i = 0;

    if (n == 0 || size < 0 || size > (int)sizeof(buf)) {
        WSASetLastError(WSAEINVAL);
        return -1;
    }
    if (mp__win_startup() < 0)
        return -1;
    end = mono_ns() + (long long)duration_ms * 1000000LL;
    memset(buf, 'j', sizeof(buf));
    while ((sent & 63) != 0 || mono_ns() < end) {
        const mp_join_t *g = &groups[i];
        if (sendto(s, buf, size, 0, (const struct sockaddr *)&g->group, g->group_len) ==
                SOCKET_ERROR &&
            WSAGetLastError() != WSAENOBUFS && WSAGetLastError() != WSAEWOULDBLOCK)
            return -1;
        sent++;
        i = i + 1 == n ? 0 : i + 1;
    }
    return sent;
}
