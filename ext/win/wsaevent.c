/* wsaevent.c -- the WSAEventSelect poller (Windows).
 *
 * WSAEventSelect ties each watched socket to an event object; the poller
 * waits for those with WSAWaitForMultipleEvents and reads (and clears) each
 * socket's record of network events with WSAEnumNetworkEvents.
 *
 * The 64-handle ceiling.  WSAWaitForMultipleEvents takes at most
 * WSA_MAXIMUM_WAIT_EVENTS (64) handles; more is WSA_WAIT_FAILED with
 * ERROR_INVALID_PARAMETER.  Two ways past it were weighed:
 *  (a) groups: at most 63 event objects (slot % 63 picks a socket's one);
 *      a signalled event is answered by enumerating every socket sharing it;
 *  (b) waiter threads: one event object per socket and one helper thread per
 *      63 of them, handing what they enumerate to the caller's thread.
 * (a) is used: 64 handles and no threads per set whatever its size, one
 * event per socket (so exact) up to 63 sockets, and no cross-thread
 * protocol between watch(), the helpers and close().  Its price is
 * O(sockets sharing the signalled events) calls per wake where (b) pays
 * O(ready) calls plus a thread hand-off; (b) also holds an event object per
 * socket and ~160 threads for 10,000 sockets.  Measured under Wine 8.0 on 2
 * cores (Wine makes every Winsock call a server round trip, so only the
 * ratio between the designs means anything): one datagram to a random
 * socket, waited for and received, round trips/s --
 *        63 sockets: (a) 4,800-6,300   (b) 4,600-6,200
 *     2,000 sockets: (a)   640-  900   (b) 3,300-4,400
 *    10,000 sockets: (a)   140-  190   (b) 3,100-5,700
 * and every socket readable at once, until all were reported: 2,000 in
 * 110-150 ms (a) vs 50-65 ms (b); 10,000 in 600-870 ms vs 250-430 ms.  So
 * (a) costs nothing up to 63 sockets and, for large sets with sparse
 * traffic, about 1/63 of the set in enumerations per wake; if such sets
 * matter on real Windows, (b) is the way to go.
 *
 * The Winsock rules this poller rests on (WSAEventSelect, MSDN):
 *  - WSAEventSelect makes the socket non-blocking, and FIONBIO back to
 *    blocking fails with WSAEINVAL while any event is selected.  Removing a
 *    socket (WSAEventSelect(s, NULL, 0)) leaves it non-blocking.
 *  - Each network event is recorded per socket, even before anyone waits,
 *    and recorded again only after its re-enabling call (a receive for
 *    FD_READ, a send that failed with WSAEWOULDBLOCK for FD_WRITE) -- the
 *    rules events.c applies above every poller.
 *  - A second WSAEventSelect records anew the selected conditions that are
 *    true now (FD_READ if data is queued, FD_WRITE if the socket can send),
 *    except, in Wine 8 at least, an event already reported and not yet
 *    re-enabled (its server keeps "reported_events" across the call): a
 *    re-selected FD_WRITE does not fire again there.  events.c expects a
 *    watch change before -> after to behave as a level-triggered poller
 *    does, so watch() does not rely on the re-recording: for the bits a
 *    change adds it asks WSAPoll once whether they hold now and queues what
 *    does.  Reporting a condition twice (the native record too) is harmless:
 *    events.c fires only what is armed.
 *  - The event object is only a doorbell: a signalled event with nothing to
 *    enumerate (a stale signal) is normal.
 *
 * Shared events.  The event object is reset BEFORE its sockets are
 * enumerated (WSAEnumNetworkEvents(s, NULL, &ne) leaves it alone), so an
 * event recorded during the enumeration signals it again instead of being
 * lost.  Enumerating clears the records, so whatever is found stays queued
 * (per slot, in a FIFO) until reported; a wait reports at most max_ready,
 * and the next one reports the rest first, polling only (timeout 0) for more.
 *
 * Fairness.  WSAWaitForMultipleEvents names only the lowest signalled index.
 * After a wake every group is checked for a signal (a zero-timeout wait over
 * the remaining range names the next one), starting from a position that
 * rotates by one group per wake, and every socket of a signalled group is
 * enumerated.  Reports leave in FIFO order and a slot is queued at most
 * once, so a socket found ready is reported within ceil(queued / max_ready)
 * waits, however busy the lower slots are.
 *
 * Threads.  What wait() reads (groups, slots, the FIFO) is guarded by this
 * poller's own lock, which wait() holds while it resets, enumerates and
 * reports, never while it blocks.  Event objects are created as groups are
 * first used and live until close(), so the handle array wait() passes is
 * never edited below the count it read.  A thread already waiting is woken
 * through the event at index 0 when a group is created or watch() queues a
 * report; a socket joining an existing group needs nothing, as its native
 * record signals the group's event.  The same event is the wake-up handle
 * (poller.h): wake() also sets `woken`, and a wait woken so returns (maybe
 * 0) where a wake for watch()'s sake waits on for the time left.
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
    int codes[3];               /* their iErrorCode[] (MP_READY_IN/OUT/HUP) */
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
    int waiting;                                /* a thread is in (or entering) wait */
    int woken;                                  /* wake(): the next wait returns */
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

/* lNetworkEvents -> MP_POLL_*, and each fired event's iErrorCode[] into
 * codes (MP_READY_IN/OUT/HUP): the spec's per-event code, which is the
 * error (a socket's SO_ERROR is not: WSAEnumNetworkEvents has already
 * consumed it); an error slot is read only if its bit is set. */
static unsigned int poll_bits(const WSANETWORKEVENTS *ne, int codes[3])
{
    static const struct { long fd; int bit; unsigned int what; int at; } map[] = {
        {FD_READ, FD_READ_BIT, MP_POLL_IN, MP_READY_IN},
        {FD_WRITE, FD_WRITE_BIT, MP_POLL_OUT, MP_READY_OUT},
        {FD_CLOSE, FD_CLOSE_BIT, MP_POLL_HUP, MP_READY_HUP},
    };
    unsigned int what = 0, i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (!(ne->lNetworkEvents & map[i].fd))
            continue;
        what |= map[i].what;
        codes[map[i].at] = ne->iErrorCode[map[i].bit];
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

/* Queues what for slot; codes (NULL: none, a probe) are the fired events'
 * iErrorCode[], kept until reported (a later success does not erase an
 * earlier error). */
static void enqueue(we_state *st, unsigned int slot, unsigned int what, const int *codes)
{
    we_slot *sl = &st->slots[slot];
    int i;

    if (!sl->queued)
        sl->codes[0] = sl->codes[1] = sl->codes[2] = 0;
    for (i = 0; codes != NULL && i < 3; i++)
        if (codes[i] != 0)
            sl->codes[i] = codes[i];
    sl->pending |= what;
    if (!sl->queued) {
        sl->queued = 1;
        st->fifo[(st->head + st->len++) % st->cap] = slot;
    }
}

/* What of `added` (MP_POLL_IN/OUT) holds on s now, by one zero-timeout
 * WSAPoll; a failure is left to the next enumeration to report. */
static unsigned int probe(mp_sock_t s, unsigned int added)
{
    WSAPOLLFD pfd;

    pfd.fd = s;
    pfd.events = (short)(((added & MP_POLL_IN) ? POLLRDNORM : 0) |
                         ((added & MP_POLL_OUT) ? POLLWRNORM : 0));
    pfd.revents = 0;
    if (pfd.events == 0 || WSAPoll(&pfd, 1, 0) <= 0)
        return 0;
    return ((pfd.revents & POLLRDNORM) ? MP_POLL_IN : 0u) |
           ((pfd.revents & POLLWRNORM) ? MP_POLL_OUT : 0u);
}

/* WSAEventSelect(s, group event, after), then queues what the added bits
 * find true now (see the header).  On failure (a socket closed behind our
 * back) the slot leaves the poller, as events.c then believes. */
static int we_watch(void *state, mp_sock_t s, unsigned int slot, unsigned int before,
                    unsigned int after)
{
    we_state *st = state;
    unsigned int g = 1 + slot % WE_GROUPS;
    long mask = fd_mask(after);
    we_slot *sl;
    long added;
    unsigned int now;
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
    added = mask & ~sl->mask;
    sl->mask = mask;
    sl->pending &= reportable(mask);
    if (added != 0 && (now = probe(s, reportable(added))) != 0) {
        enqueue(st, slot, now, NULL);
        if (st->waiting)
            WSASetEvent(st->events[0]);
    }
    mp_mutex_unlock(&st->lock);
    if (err != 0) {
        WSASetLastError(err);
        return -1;
    }
    return 0;
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
        int codes[3] = {0, 0, 0};

        memset(&ne, 0, sizeof(ne));
        if (WSAEnumNetworkEvents(sl->sock, NULL, &ne) != 0) {
            what = MP_POLL_ERR;         /* as poll's POLLNVAL, with the call's code */
            codes[MP_READY_IN] = codes[MP_READY_OUT] = WSAGetLastError();
        } else {
            what = poll_bits(&ne, codes) & reportable(sl->mask);
        }
        if (what != 0)
            enqueue(st, slot, what, codes);
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
            memcpy(ready[got].codes, sl->codes, sizeof(sl->codes));
            ready[got].has_codes = 1;
            got++;
        }
    }
    return got;
}

/* Returns 0 only when timeout_ms has passed (-1: never): a wake-up or a
 * stale signal with nothing to report waits again for the time left.  Not
 * alertable, and Windows has no EINTR: nothing else ends the wait early. */
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
        st->waiting = 1;
        mp_mutex_unlock(&st->lock);
        rc = WSAWaitForMultipleEvents(n, st->events, FALSE, look, FALSE);
        mp_mutex_lock(&st->lock);
        st->waiting = 0;
        if (rc == WSA_WAIT_FAILED) {
            int err = WSAGetLastError();
            mp_mutex_unlock(&st->lock);
            WSASetLastError(err);
            return -1;
        }
        /* WSA_WAIT_TIMEOUT, and WSA_WAIT_IO_COMPLETION (only when alertable,
         * which this wait is not), leave just what is already queued. */
        if (rc - WSA_WAIT_EVENT_0 < n) {
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
        if (st->woken) {
            st->woken = 0;
            left = 0;                  /* woken: what is ready now, maybe nothing */
        }
        mp_mutex_unlock(&st->lock);
        if (got > 0 || left == 0)
            return got;
    }
}

static int we_wake(void *state)
{
    we_state *st = state;
    int ok;

    mp_mutex_lock(&st->lock);
    st->woken = 1;
    ok = WSASetEvent(st->events[0]);
    mp_mutex_unlock(&st->lock);
    return ok ? 0 : -1;
}

const mp_poller_t mp__poller_wsaevent = {"wsaevent", we_open, we_close, we_watch, NULL,
                                         we_wait, NULL, we_wake};
