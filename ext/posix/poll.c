/* poll.c -- the poll(2) poller: portable, O(watched sockets) per wait.
 *
 * The table is indexed by slot and edited under the caller's lock; sync()
 * copies it for the waiting thread when it changed, so a registration made
 * while another thread waits never races with poll().  Ready sockets are
 * reported starting from a rotating position, so a busy low slot cannot
 * starve the others when more are ready than fit in one report.
 *
 * The wake-up handle (poller.h) is a self-pipe (wake_pipe.c) whose read end
 * follows the slots in the snapshot: poll() watches snap_used + 1 entries.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* POLLRDHUP (Linux) */
#endif
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "../poller.h"
#include "wake_pipe.h"

#ifndef POLLRDHUP
#define POLLRDHUP 0     /* Linux only; elsewhere a shut read side is POLLHUP */
#endif

typedef struct {
    struct pollfd *table, *snap;
    unsigned int cap, used;          /* slots allocated, slots in use (high mark) */
    unsigned int snap_cap, snap_used;
    unsigned int start;              /* where the next report begins */
    int changed;
    mp_wake_pipe_t wake;
} poll_state;

static int pl_open(void **state, int max_ready)
{
    poll_state *st = calloc(1, sizeof(poll_state));

    (void)max_ready;
    if (st == NULL) {
        errno = ENOBUFS;
        return -1;
    }
    if (mp__wake_pipe_open(&st->wake) < 0) {
        int saved = errno;
        free(st);
        errno = saved;
        return -1;
    }
    st->changed = 1;                /* the first sync makes the snapshot's wake entry */
    *state = st;
    return 0;
}

/* In a child after fork too: the pipe's descriptors are the child's copies. */
static void pl_close(void *state)
{
    poll_state *st = state;
    mp__wake_pipe_close(&st->wake);
    free(st->table);
    free(st->snap);
    free(st);
}

static int reserve(struct pollfd **table, unsigned int *cap, unsigned int need)
{
    unsigned int n = *cap ? *cap : 64;
    struct pollfd *p;

    while (n < need)
        n *= 2;
    if (n == *cap)
        return 0;
    p = realloc(*table, (size_t)n * sizeof(*p));
    if (p == NULL) {
        errno = ENOBUFS;
        return -1;
    }
    memset(p + *cap, 0, (size_t)(n - *cap) * sizeof(*p));
    for (unsigned int i = *cap; i < n; i++)
        p[i].fd = -1;               /* poll() skips negative descriptors */
    *table = p;
    *cap = n;
    return 0;
}

static int pl_watch(void *state, mp_sock_t s, unsigned int slot, unsigned int before,
                    unsigned int after)
{
    poll_state *st = state;
    (void)before;

    if (slot >= st->cap && reserve(&st->table, &st->cap, slot + 1) < 0)
        return -1;
    st->table[slot].fd = after == 0 ? -1 : s;
    st->table[slot].events = (short)(((after & MP_POLL_IN) ? POLLIN : 0) |
                                     ((after & MP_POLL_OUT) ? POLLOUT : 0) |
                                     ((after & MP_POLL_HUP) ? POLLRDHUP : 0));
    if (slot >= st->used)
        st->used = slot + 1;
    st->changed = 1;
    return 0;
}

static void pl_sync(void *state)
{
    poll_state *st = state;

    if (!st->changed)
        return;
    if (reserve(&st->snap, &st->snap_cap, st->used + 1) < 0)
        return;                     /* keep the old snapshot; try next time */
    if (st->used > 0)
        memcpy(st->snap, st->table, (size_t)st->used * sizeof(*st->snap));
    st->snap[st->used].fd = st->wake.rd;
    st->snap[st->used].events = POLLIN;
    st->snap[st->used].revents = 0;
    st->snap_used = st->used;
    st->changed = 0;
}

static int pl_wait(void *state, int timeout_ms, mp_ready_t *ready, int max_ready)
{
    poll_state *st = state;
    unsigned int n = st->snap_used, k;
    /* No snapshot yet (its first allocation failed): no wake entry either. */
    nfds_t all = st->snap != NULL ? (nfds_t)n + 1 : 0;
    int got = 0, rc = poll(st->snap, all, timeout_ms);

    if (rc <= 0)
        return rc;
    if (all > n && st->snap[n].revents != 0)
        mp__wake_pipe_drain(&st->wake);
    for (k = 0; k < n && got < max_ready; k++) {
        unsigned int i = (st->start + k) % n;
        short r = st->snap[i].revents;
        if (st->snap[i].fd < 0 || r == 0)
            continue;
        ready[got].slot = i;
        ready[got].what = ((r & POLLIN) ? MP_POLL_IN : 0u) | ((r & POLLOUT) ? MP_POLL_OUT : 0u) |
                          ((r & (POLLERR | POLLNVAL)) ? MP_POLL_ERR : 0u) |
                          ((r & (POLLHUP | POLLRDHUP)) ? MP_POLL_HUP : 0u);
        got++;
    }
    st->start = n ? (st->start + 1) % n : 0;
    return got;
}

static int pl_wake(void *state)
{
    poll_state *st = state;
    return mp__wake_pipe_signal(&st->wake);
}

const mp_poller_t mp__poller_poll = {"poll", pl_open, pl_close, pl_watch, pl_sync,
                                     pl_wait, NULL, pl_wake};
