/* wsaevent.c -- the WSAEventSelect poller (Windows).
 *
 * WSAEventSelect associates each watched socket with an event object;
 * WSAWaitForMultipleEvents waits for event objects; WSAEnumNetworkEvents
 * reads and clears a socket's record of network events.
 *
 * The 64-handle ceiling.  WSAWaitForMultipleEvents takes at most
 * WSA_MAXIMUM_WAIT_EVENTS (64) handles; more is WSA_WAIT_FAILED with
 * ERROR_INVALID_PARAMETER.  Two ways past it were weighed:
 *  (a) groups: at most 63 event objects, slot % 63 picks a socket's one, and
 *      a signalled event is answered by enumerating every socket sharing it;
 *  (b) waiter threads: one event object per socket and one helper thread per
 *      63 of them, each waking the caller's thread through a queue.
 * (a) is used.  It needs no threads, a fixed 64 handles per set and no
 * cross-thread hand-off per wake, and is exact up to 63 sockets (one socket
 * per event).  Its cost is O(sockets in the signalled groups) calls per
 * wake, where (b) pays O(ready) calls plus a thread switch per wake, 10,000
 * event objects and ~160 threads for 10,000 sockets.  Measured under Wine
 * 8.0 (which says nothing about Windows' speed; only the designs compared):
 * see MEASURED below.
 *
 * The Winsock rules this poller rests on (WSAEventSelect, MSDN):
 *  - WSAEventSelect makes the socket non-blocking, and FIONBIO back to
 *    blocking fails with WSAEINVAL while any event is selected.  Removing a
 *    socket (WSAEventSelect(s, NULL, 0)) leaves it non-blocking.
 *  - Each network event is recorded once per socket, even before anyone
 *    waits, and recorded again only after its re-enabling call (recv for
 *    FD_READ, a send that failed with WSAEWOULDBLOCK for FD_WRITE).
 *    events.c keeps the same rules above every poller, so it never asks for
 *    a condition again without either such a call or a watch change.
 *  - A second WSAEventSelect records anew every selected condition that is
 *    true now (FD_READ if data is queued, FD_WRITE if the socket can send):
 *    a watch change before -> after therefore behaves as a level-triggered
 *    poller would, which is what events.c expects.
 *  - Events are recorded per socket, the event object is only a doorbell:
 *    a signalled event with nothing to enumerate (a stale signal) is normal.
 *
 * Shared events.  The event object is reset BEFORE its sockets are
 * enumerated (WSAEnumNetworkEvents(s, NULL, &ne) leaves it alone), so an
 * event recorded during the enumeration signals it again instead of being
 * lost.  Enumerating clears the records, so everything found is kept (per
 * slot, in a FIFO) until reported; a wait reports at most max_ready and the
 * rest first in the next one, which then only polls (timeout 0) for more.
 *
 * Fairness.  WSAWaitForMultipleEvents names only the lowest signalled index.
 * After a wake every group is checked for a signal (a zero-timeout wait over
 * the remaining range finds the next one), starting from a position that
 * rotates by one group per wake, and every socket of a signalled group is
 * enumerated; reports leave in FIFO order and each slot is queued at most
 * once, so a socket found ready is reported within ceil(ready / max_ready)
 * waits, however busy the lower slots are.
 *
 * Threads.  Tables that wait() reads (groups, slots, the FIFO) are guarded
 * by this poller's own lock, held by wait() only while it resets and
 * enumerates, never while it blocks.  Event objects are created as groups
 * are first used and live until close(), so the handle array wait() passes
 * is never edited below its count; creating one signals the wake event at
 * index 0, so a thread already waiting picks up the new group.  Sockets
 * added to an existing group need no wake: WSAEventSelect signals the
 * group's event itself when a selected condition is already true.
 *
 * MEASURED (Wine 8.0, 2 cores, UDP on 127.0.0.1, one datagram sent to a
 * random registered socket, waited for and received; round trips/s):
 *   filled in below by the harness run, see the report.
 */
#include <stdlib.h>
#include <string.h>

#include "../poller.h"
#include "../mp_mutex.h"

/* Index 0 of the handle array is the wake event; groups use 1..63. */
#define WE_GROUPS (WSA_MAXIMUM_WAIT_EVENTS - 1)

typedef struct {
    mp_sock_t sock;
    long mask;                  /* FD_* selected; 0: not in the poller */
    unsigned int pos;           /* index in its group's member list */
    unsigned int pending;       /* MP_POLL_* enumerated, not yet reported */
    unsigned char queued;       /* in the FIFO */
} we_slot;

typedef struct {
    unsigned int *members;
    unsigned int n, cap;
} we_group;

typedef struct {
    mp_mutex_t lock;
    WSAEVENT events[WSA_MAXIMUM_WAIT_EVENTS];   /* [0] wake, [1..ngroups] groups */
    unsigned int ngroups;                       /* grows only, up to WE_GROUPS */
    we_group groups[WSA_MAXIMUM_WAIT_EVENTS];   /* by event index; [0] unused */
    we_slot *slots;
    unsigned int cap;                           /* slots and FIFO entries */
    unsigned int *fifo, head, len;              /* ring of slots to report */
    unsigned int start;                         /* first group checked next wake */
} we_state;

static long fd_mask(unsigned int what)
{
    return ((what & MP_POLL_IN) ? FD_READ : 0) | ((what & MP_POLL_OUT) ? FD_WRITE : 0) |
           ((what & MP_POLL_HUP) ? FD_CLOSE : 0);
}

/* What may be reported for a slot selecting `mask`: its events, and errors
 * only while something is selected. */
static unsigned int reportable(long mask)
{
    return mask == 0 ? 0u
                     : ((mask & FD_READ) ? MP_POLL_IN : 0u) | ((mask & FD_WRITE) ? MP_POLL_OUT : 0u) |
                           ((mask & FD_CLOSE) ? MP_POLL_HUP : 0u) | MP_POLL_ERR;
}

/* lNetworkEvents -> MP_POLL_*; an error slot is read only if its bit is set. */
static unsigned int poll_bits(const WSANETWORKEVENTS *ne)
{
    static const struct { long fd; int bit; unsigned int what; } map[] = {
        {FD_READ, FD_READ_BIT, MP_POLL_IN},
        {FD_WRITE, FD_WRITE_BIT, MP_POLL_OUT},
        {FD_CLOSE, FD_CLOSE_BIT, MP_POLL_HUP},
    };
    unsigned int what = 0, i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (!(ne->lNetworkEvents & map[i].fd))
            continue;
        what |= map[i].what;
        if (ne->iErrorCode[map[i].bit] != 0)
            what |= MP_POLL_ERR;
    }
    return what;
}

static int we_open(void **state, int max_ready)
{
    we_state *st = calloc(1, sizeof(*st));

    (void)max_ready;
    if (st == NULL) {
        WSASetLastError(WSAENOBUFS);
        return -1;
    }
    st->events[0] = WSACreateEvent();
    if (st->events[0] == WSA_INVALID_EVENT) {
        int err = WSAGetLastError();
        free(st);
        WSASetLastError(err);
        return -1;
    }
    mp_mutex_init(&st->lock);
    *state = st;
    return 0;
}

/* Sockets still selected are released (their handles are still theirs:
 * the facade unregisters a socket before closing it), then the events. */
static void we_close(void *state)
{
    we_state *st = state;
    unsigned int g, i;

    for (g = 1; g <= st->ngroups; g++) {
        for (i = 0; i < st->groups[g].n; i++)
            WSAEventSelect(st->slots[st->groups[g].members[i]].sock, NULL, 0);
        free(st->groups[g].members);
    }
    for (g = 0; g <= st->ngroups; g++)
        WSACloseEvent(st->events[g]);
    mp_mutex_destroy(&st->lock);
    free(st->slots);
    free(st->fifo);
    free(st);
}

/* Room for slot `need - 1`: the slot table and the FIFO (linearised). */
static int reserve_slots(we_state *st, unsigned int need)
{
    unsigned int cap = st->cap ? st->cap : 64, i;
    we_slot *slots;
    unsigned int *fifo;

    while (cap < need) {
        if (cap > 0x7fffffffu / sizeof(we_slot) / 2)
            return -1;
        cap *= 2;
    }
    if (cap == st->cap)
        return 0;
    slots = realloc(st->slots, (size_t)cap * sizeof(*slots));
    if (slots == NULL)
        return -1;
    memset(slots + st->cap, 0, (size_t)(cap - st->cap) * sizeof(*slots));
    st->slots = slots;
    fifo = malloc((size_t)cap * sizeof(*fifo));
    if (fifo == NULL)
        return -1;     /* the larger slot table is kept; cap is unchanged */
    for (i = 0; i < st->len; i++)
        fifo[i] = st->fifo[(st->head + i) % st->cap];
    free(st->fifo);
    st->fifo = fifo;
    st->head = 0;
    st->cap = cap;
    return 0;
}

/* Creates the event objects up to group g and tells a waiting thread. */
static int reserve_group(we_state *st, unsigned int g)
{
    if (g <= st->ngroups)
        return 0;
    while (st->ngroups < g) {
        WSAEVENT ev = WSACreateEvent();
        if (ev == WSA_INVALID_EVENT)
            return -1;
        st->events[++st->ngroups] = ev;
    }
    WSASetEvent(st->events[0]);
    return 0;
}

static int join_group(we_group *grp, we_slot *sl, unsigned int slot)
{
    if (grp->n == grp->cap) {
        unsigned int cap = grp->cap ? grp->cap * 2 : 8;
        unsigned int *p = realloc(grp->members, (size_t)cap * sizeof(*p));
        if (p == NULL)
            return -1;
        grp->members = p;
        grp->cap = cap;
    }
    sl->pos = grp->n;
    grp->members[grp->n++] = slot;
    return 0;
}

static void leave_group(we_state *st, we_group *grp, we_slot *sl)
{
    unsigned int last = grp->members[--grp->n];

    grp->members[sl->pos] = last;
    st->slots[last].pos = sl->pos;
}

/* WSAEventSelect(s, group event, after): re-records what is true now.  On
 * failure (a socket closed behind our back) the slot leaves the poller, as
 * events.c then believes. */
static int we_watch(void *state, mp_sock_t s, unsigned int slot, unsigned int before,
                    unsigned int after)
{
    we_state *st = state;
    unsigned int g = 1 + slot % WE_GROUPS;
    long mask = fd_mask(after);
    we_slot *sl;
    int err = 0, member;

    (void)before;      /* our own table says whether the slot is selected */
    mp_mutex_lock(&st->lock);
    if (reserve_slots(st, slot + 1) < 0) {
        mp_mutex_unlock(&st->lock);
        WSASetLastError(WSAENOBUFS);
        return -1;
    }
    sl = &st->slots[slot];
    member = sl->mask != 0;
    if (mask != 0 && !member) {
        if (reserve_group(st, g) < 0)
            err = WSAGetLastError();
        else if (join_group(&st->groups[g], sl, slot) < 0)
            err = WSAENOBUFS;
        if (err != 0) {
            mp_mutex_unlock(&st->lock);
            WSASetLastError(err);
            return -1;
        }
        member = 1;
    }
    sl->sock = s;
    if (WSAEventSelect(s, mask != 0 ? st->events[g] : NULL, mask) != 0) {
        err = WSAGetLastError();
        mask = 0;
    }
    if (mask == 0 && member)
        leave_group(st, &st->groups[g], sl);
    sl->mask = mask;
    sl->pending &= reportable(mask);
    mp_mutex_unlock(&st->lock);
    if (err != 0) {
        WSASetLastError(err);
        return -1;
    }
    return 0;
}

static void enqueue(we_state *st, unsigned int slot, unsigned int what)
{
    we_slot *sl = &st->slots[slot];

    sl->pending |= what;
    if (!sl->queued) {
        sl->queued = 1;
        st->fifo[(st->head + st->len++) % st->cap] = slot;
    }
}

/* Resets group g's event, then enumerates every socket sharing it. */
static void harvest(we_state *st, unsigned int g)
{
    we_group *grp = &st->groups[g];
    unsigned int i;

    WSAResetEvent(st->events[g]);
    for (i = 0; i < grp->n; i++) {
        unsigned int slot = grp->members[i];
        we_slot *sl = &st->slots[slot];
        WSANETWORKEVENTS ne;
        unsigned int what;

        memset(&ne, 0, sizeof(ne));
        if (WSAEnumNetworkEvents(sl->sock, NULL, &ne) != 0)
            what = MP_POLL_ERR;         /* as poll's POLLNVAL */
        else
            what = poll_bits(&ne) & reportable(sl->mask);
        if (what != 0)
            enqueue(st, slot, what);
    }
}

/* Harvests every signalled group in [lo, hi); each zero-timeout wait names
 * the lowest signalled one, which harvesting resets. */
static void harvest_range(we_state *st, unsigned int lo, unsigned int hi)
{
    while (lo < hi) {
        DWORD rc = WSAWaitForMultipleEvents(hi - lo, &st->events[lo], FALSE, 0, FALSE);
        if (rc - WSA_WAIT_EVENT_0 >= hi - lo)     /* WSA_WAIT_EVENT_0 is 0 */
            return;
        lo += rc - WSA_WAIT_EVENT_0;
        harvest(st, lo++);
    }
}

static int report(we_state *st, mp_ready_t *ready, int max_ready)
{
    int got = 0;

    while (got < max_ready && st->len > 0) {
        unsigned int slot = st->fifo[st->head];
        we_slot *sl = &st->slots[slot];
        unsigned int what = sl->pending & reportable(sl->mask);

        st->head = (st->head + 1) % st->cap;
        st->len--;
        sl->queued = 0;
        sl->pending = 0;
        if (what != 0) {
            ready[got].slot = slot;
            ready[got].what = what;
            got++;
        }
    }
    return got;
}

/* Returns 0 only when timeout_ms has passed: a wake-up, a stale signal or
 * an APC with nothing to report waits again for the time left. */
static int we_wait(void *state, int timeout_ms, mp_ready_t *ready, int max_ready)
{
    we_state *st = state;
    DWORD began = GetTickCount();

    for (;;) {
        DWORD left = WSA_INFINITE, look, rc;
        unsigned int n, first;
        int got;

        if (timeout_ms >= 0) {
            DWORD spent = GetTickCount() - began;      /* wraps correctly */
            left = spent >= (DWORD)timeout_ms ? 0 : (DWORD)timeout_ms - spent;
        }
        mp_mutex_lock(&st->lock);
        n = st->ngroups + 1;
        look = st->len > 0 ? 0 : left;                /* reports queued: only look */
        mp_mutex_unlock(&st->lock);
        rc = WSAWaitForMultipleEvents(n, st->events, FALSE, look, FALSE);
        if (rc == WSA_WAIT_FAILED)
            return -1;                                 /* WSAGetLastError() is set */
        mp_mutex_lock(&st->lock);
        if (rc - WSA_WAIT_EVENT_0 < n) {
            /* WSA_WAIT_TIMEOUT and WSA_WAIT_IO_COMPLETION (not alertable:
             * cannot happen) fall through to what is already queued. */
            first = rc - WSA_WAIT_EVENT_0;
            if (first == 0)
                WSAResetEvent(st->events[0]);
            else
                harvest(st, first);
            if (st->ngroups > 0) {
                unsigned int from = 1 + st->start % st->ngroups;
                harvest_range(st, from, st->ngroups + 1);
                harvest_range(st, 1, from);
                st->start = from;
            }
        }
        got = report(st, ready, max_ready);
        mp_mutex_unlock(&st->lock);
        if (got > 0 || left == 0)
            return got;
    }
}

const mp_poller_t mp__poller_wsaevent = {"wsaevent", we_open, we_close, we_watch, NULL, we_wait};
