/* wsapoll.c -- the WSAPoll poller (Windows Vista and later): poll.c's design
 * on Winsock, level-triggered, O(watched sockets) per wait.
 *
 * The table is indexed by slot and edited under the caller's lock; sync()
 * copies it for the waiting thread when it changed, so a registration made
 * while another thread waits never races with WSAPoll (it is seen by the
 * next wait).  Ready sockets are reported from a rotating position, which
 * moves past the last slot reported when max_ready cut the report short, so
 * a slot that is ready is reported within ceil(ready / max_ready) waits.
 *
 * WSAPoll's rules (MSDN): an entry whose fd is negative (INVALID_SOCKET) is
 * ignored; a call whose entries are all ignored fails with WSAEINVAL, so an
 * empty set polls its wake-up socket alone, one slice at a time (wp_wait);
 * only POLLRDNORM, POLLRDBAND, POLLWRNORM may be
 * asked for (POLLPRI is WSAEINVAL), POLLHUP, POLLERR and POLLNVAL are
 * reported unasked.  Unlike WSAEventSelect it leaves the socket's blocking
 * mode alone.
 *
 * The wake-up handle (poller.h): WSAPoll takes sockets only, so it is a UDP
 * socket bound to 127.0.0.1 and connected to itself, non-blocking and not
 * inheritable; wake() sends it a byte, and the wait, which watches it as
 * the entry after the slots, reads it empty.
 */
#include <stdlib.h>
#include <string.h>

#include "../poller.h"
#include "win.h"

typedef struct {
    WSAPOLLFD *table, *snap;
    unsigned int cap, used;          /* slots allocated, slots in use (high mark) */
    unsigned int snap_cap, snap_used, snap_live;
    unsigned int live;               /* entries with a socket */
    unsigned int start;              /* where the next report begins */
    int changed;
    SOCKET wake;
} wsapoll_state;

/* The self-connected loopback socket; INVALID_SOCKET with the last error. */
static SOCKET wake_socket(void)
{
    struct sockaddr_in a;
    int len = (int)sizeof(a), err;
    u_long on = 1;
    SOCKET s;

    if (mp__win_startup() < 0)
        return INVALID_SOCKET;
    s = WSASocketW(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET)
        return INVALID_SOCKET;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, len) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0 &&
        connect(s, (struct sockaddr *)&a, len) == 0 && ioctlsocket(s, FIONBIO, &on) == 0)
        return s;
    err = WSAGetLastError();
    closesocket(s);
    WSASetLastError(err);
    return INVALID_SOCKET;
}

static int wp_open(void **state, int max_ready)
{
    wsapoll_state *st = calloc(1, sizeof(wsapoll_state));

    (void)max_ready;
    if (st == NULL) {
        WSASetLastError(WSAENOBUFS);
        return -1;
    }
    st->wake = wake_socket();
    if (st->wake == INVALID_SOCKET) {
        int err = WSAGetLastError();
        free(st);
        WSASetLastError(err);
        return -1;
    }
    st->changed = 1;                /* the first sync makes the snapshot's wake entry */
    *state = st;
    return 0;
}

static void wp_close(void *state)
{
    wsapoll_state *st = state;
    closesocket(st->wake);
    free(st->table);
    free(st->snap);
    free(st);
}

static int reserve(WSAPOLLFD **table, unsigned int *cap, unsigned int need)
{
    unsigned int n = *cap ? *cap : 64, i;
    WSAPOLLFD *p;

    while (n < need) {
        if (n > 0x7fffffffu / sizeof(*p) / 2) {
            WSASetLastError(WSAENOBUFS);
            return -1;
        }
        n *= 2;
    }
    if (n == *cap)
        return 0;
    p = realloc(*table, (size_t)n * sizeof(*p));
    if (p == NULL) {
        WSASetLastError(WSAENOBUFS);
        return -1;
    }
    memset(p + *cap, 0, (size_t)(n - *cap) * sizeof(*p));
    for (i = *cap; i < n; i++)
        p[i].fd = INVALID_SOCKET;      /* ignored by WSAPoll */
    *table = p;
    *cap = n;
    return 0;
}

static int wp_watch(void *state, mp_sock_t s, unsigned int slot, unsigned int before,
                    unsigned int after)
{
    wsapoll_state *st = state;
    (void)before;

    if (slot >= st->cap && reserve(&st->table, &st->cap, slot + 1) < 0)
        return -1;
    if ((st->table[slot].fd != INVALID_SOCKET) != (after != 0))
        st->live += after != 0 ? 1u : (unsigned int)-1;
    st->table[slot].fd = after == 0 ? INVALID_SOCKET : s;
    /* HUP cannot be asked for: WSAPoll reports it unasked. */
    st->table[slot].events = (short)(((after & MP_POLL_IN) ? POLLRDNORM : 0) |
                                     ((after & MP_POLL_OUT) ? POLLWRNORM : 0));
    if (slot >= st->used)
        st->used = slot + 1;
    st->changed = 1;
    return 0;
}

static void wp_sync(void *state)
{
    wsapoll_state *st = state;

    if (!st->changed)
        return;
    if (reserve(&st->snap, &st->snap_cap, st->used + 1) < 0)
        return;                     /* keep the old snapshot; try next time */
    if (st->used > 0)
        memcpy(st->snap, st->table, (size_t)st->used * sizeof(*st->snap));
    st->snap[st->used].fd = st->wake;
    st->snap[st->used].events = POLLRDNORM;
    st->snap[st->used].revents = 0;
    st->snap_used = st->used;
    st->snap_live = st->live;
    st->changed = 0;
}

/* Reads the wake-up socket empty (WSAEWOULDBLOCK, or any error: a later
 * wake-up is a datagram of its own). */
static void drain(SOCKET s)
{
    char buf[16];

    while (recv(s, buf, (int)sizeof(buf), 0) >= 0)
        ;
}

static int wp_wait(void *state, int timeout_ms, mp_ready_t *ready, int max_ready)
{
    wsapoll_state *st = state;
    unsigned int n = st->snap_used, k, i = 0;
    int got = 0, rc;

    /* No snapshot yet (its first allocation failed): no wake entry either. */
    if (st->snap == NULL) {
        Sleep((DWORD)mp__empty_wait_ms(timeout_ms));
        return 0;
    }
    /* No socket to watch: the wake-up socket alone, for one slice
     * (mp__empty_wait_ms), then 0 -- a registration is seen only by the
     * next wait, nor does a group set's shutdown wake it; the caller looks
     * again with the time it has left. */
    if (st->snap_live == 0) {
        rc = WSAPoll(&st->snap[n], 1, mp__empty_wait_ms(timeout_ms));
        if (rc == SOCKET_ERROR)
            return -1;
        if (rc > 0)
            drain(st->wake);
        return 0;
    }
    rc = WSAPoll(st->snap, (ULONG)n + 1, timeout_ms < 0 ? -1 : timeout_ms);
    if (rc == SOCKET_ERROR)
        return -1;                  /* WSAGetLastError() is set */
    if (rc == 0)
        return 0;
    if (st->snap[n].revents != 0)
        drain(st->wake);
    for (k = 0; k < n && got < max_ready; k++) {
        i = (st->start + k) % n;
        short r = st->snap[i].revents;
        if (st->snap[i].fd == INVALID_SOCKET || r == 0)
            continue;
        ready[got].slot = i;
        ready[got].what = ((r & (POLLRDNORM | POLLRDBAND)) ? MP_POLL_IN : 0u) |
                          ((r & POLLWRNORM) ? MP_POLL_OUT : 0u) |
                          ((r & (POLLERR | POLLNVAL)) ? MP_POLL_ERR : 0u) |
                          ((r & POLLHUP) ? MP_POLL_HUP : 0u);
        got++;
    }
    /* Cut short: the next report starts after the last one reported. */
    st->start = got == max_ready ? (i + 1) % n : (st->start + 1) % n;
    return got;
}

static int wp_wake(void *state)
{
    wsapoll_state *st = state;
    char one = 1;

    /* WSAEWOULDBLOCK: the buffer is full of wake-ups already. */
    if (send(st->wake, &one, 1, 0) == 1 || WSAGetLastError() == WSAEWOULDBLOCK)
        return 0;
    return -1;
}

const mp_poller_t mp__poller_wsapoll = {"wsapoll", wp_open, wp_close, wp_watch, wp_sync,
                                        wp_wait, NULL, wp_wake};
