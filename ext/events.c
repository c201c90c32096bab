/* events.c -- the WSAEventSelect model over any readiness poller.
 *
 * Winsock's rules (WSAEventSelect, WSAEnumNetworkEvents), kept here once so
 * that code written against one platform behaves the same on the others:
 *  - FD_READ fires once, then not again until a receive call re-enables it
 *    (mp_evset_rearm); if data is still queued then, it fires again.
 *  - FD_WRITE fires once after registration (a UDP socket can always send),
 *    then only after a send failed with WSAEWOULDBLOCK (rearm) and space freed.
 *  - FD_CLOSE fires once.  FD_CONNECT is posted by the library (a join's
 *    completion) and reported by the next wait, with its error code.
 *  - Registering again (mp_evset_modify) re-records every event, as a second
 *    WSAEventSelect does.
 *  - An event may be posted for a time to come (mp_evset_post_at: a shaped
 *    socket's FD_WRITE when its tokens return): prepare shortens the wait
 *    to the earliest such time, and the first collect at or after it
 *    reports the event.
 *  - A wait running in another thread sees a post, a due time, a drop or
 *    the set's close at once: prepare marks the set waiting, and those calls
 *    then signal the poller's wake-up handle (once per wait: a burst of
 *    posts costs one system call, and a post with no waiter costs none);
 *    collect ends the mark.
 * What a poller watches follows what may fire: a disarmed event is removed
 * lazily, at the next prepare, so the steady loop of wait + receive costs no
 * extra system call, and a socket nobody reads never makes wait spin.
 */
#include <stdlib.h>
#include <string.h>

#include "poller.h"
#include "mp_platform.h"

#define MP_DEFAULT_MAX_READY 1024
#define MP_FD_WATCHED (MP_FD_READ | MP_FD_WRITE | MP_FD_CLOSE)

struct mp_reg {
    mp_sock_t sock;
    unsigned int interest;          /* FD_* asked for */
    unsigned int armed;             /* FD_* that may fire now */
    unsigned int watch;             /* MP_POLL_* the poller watches */
    unsigned int posted;            /* FD_* posted, not yet collected */
    int posted_error[MP_FD_MAX_EVENTS];
    unsigned int out_epoch;         /* == set->epoch: has out[out_pos] */
    unsigned int out_pos;
    unsigned char in_use, dirty, queued;
    unsigned char dropped;          /* mp_evset_drop: report FD_CLOSE once, then remove */
    unsigned char timed;            /* listed in set->timed */
    unsigned int due_events;        /* FD_* due at due_ns (mp_evset_post_at); 0: none */
    uint64_t due_ns;
};

struct mp_evset {
    const mp_poller_t *poller;
    void *state;
    struct mp_reg *regs;
    unsigned int cap, high;         /* allocated, ever used */
    unsigned int *free_slots, nfree;
    unsigned int *retiring, nretiring;   /* removed; free after the next prepare */
    unsigned int *dirty, ndirty;         /* watch may need to change */
    unsigned int *posted, nposted;
    unsigned int *timed, ntimed;         /* slots that may have due events */
    mp_ready_t *ready;
    int max_ready;
    mp_netevents_t *out;
    unsigned int epoch;
    /* Under the caller's lock: a wait is between prepare and collect (or
     * mp_evset_end_wait) (waiting), and its poller was woken already
     * (woken). */
    unsigned char waiting, woken;
};

static int bit_index(unsigned int event)
{
    int i = 0;
    while (event > 1) {
        event >>= 1;
        i++;
    }
    return i;
}

/* ---- sets --------------------------------------------------------------- */

const char *mp_evset_backend(int i)
{
    int n = 0;
    while (mp__pollers[n] != NULL)
        n++;
    return i >= 0 && i < n ? mp__pollers[i]->name : NULL;
}

int mp_evset_open(const char *backend, mp_evset_t **out)
{
    const mp_poller_t *poller = NULL;
    mp_evset_t *set;
    int i;

    for (i = 0; mp__pollers[i] != NULL && poller == NULL; i++)
        if (backend == NULL || strcmp(backend, mp__pollers[i]->name) == 0)
            poller = mp__pollers[i];
    if (poller == NULL)
        return mp__fail(MP_WSAEINVAL);
    set = calloc(1, sizeof(*set));
    if (set == NULL)
        return mp__fail(MP_WSAENOBUFS);
    set->poller = poller;
    set->max_ready = MP_DEFAULT_MAX_READY;
    set->ready = calloc((size_t)set->max_ready, sizeof(*set->ready));
    if (set->ready == NULL) {
        free(set);
        return mp__fail(MP_WSAENOBUFS);
    }
    if (poller->open(&set->state, set->max_ready) < 0) {
        free(set->ready);
        free(set);
        return -1;
    }
    *out = set;
    return 0;
}

const char *mp_evset_backend_name(const mp_evset_t *set)
{
    return set->poller->name;
}

static void free_set(mp_evset_t *set)
{
    free(set->regs);
    free(set->free_slots);
    free(set->retiring);
    free(set->dirty);
    free(set->posted);
    free(set->timed);
    free(set->ready);
    free(set->out);
    free(set);
}

void mp_evset_close(mp_evset_t *set)
{
    if (set == NULL)
        return;
    set->poller->close(set->state);
    free_set(set);
}

void mp_evset_forget(mp_evset_t *set)
{
    if (set == NULL)
        return;
    if (set->poller->forget != NULL)
        set->poller->forget(set->state);
    else
        set->poller->close(set->state);
    free_set(set);
}

/* Grows every per-slot array together; all hold at most cap entries. */
static int grow(mp_evset_t *set)
{
    unsigned int cap = set->cap ? set->cap * 2 : 64;
    void *p;

    if (cap > 0x7fffffffu / sizeof(struct mp_reg))
        return mp__fail(MP_WSAENOBUFS);
#define MP_GROW(field)                                                      \
    p = realloc(set->field, (size_t)cap * sizeof(*set->field));             \
    if (p == NULL)                                                          \
        return mp__fail(MP_WSAENOBUFS);                                         \
    set->field = p;
    MP_GROW(regs)
    MP_GROW(free_slots)
    MP_GROW(retiring)
    MP_GROW(dirty)
    MP_GROW(posted)
    MP_GROW(timed)
    MP_GROW(out)
#undef MP_GROW
    memset(set->regs + set->cap, 0, (size_t)(cap - set->cap) * sizeof(*set->regs));
    set->cap = cap;
    return 0;
}

static struct mp_reg *live(mp_evset_t *set, unsigned int slot)
{
    if (slot >= set->high || !set->regs[slot].in_use) {
        mp__set_wsa_error(MP_WSAENOTSOCK);
        return NULL;
    }
    return &set->regs[slot];
}

/* What the poller must watch for the events that may fire now. */
static unsigned int wanted(const struct mp_reg *r)
{
    unsigned int may = r->interest & r->armed;
    return ((may & MP_FD_READ) ? MP_POLL_IN : 0) |
           ((may & MP_FD_WRITE) ? MP_POLL_OUT : 0) |
           ((may & MP_FD_CLOSE) ? MP_POLL_HUP : 0);
}

static void mark_dirty(mp_evset_t *set, unsigned int slot)
{
    if (!set->regs[slot].dirty) {
        set->regs[slot].dirty = 1;
        set->dirty[set->ndirty++] = slot;
    }
}

void mp_evset_end_wait(mp_evset_t *set)
{
    set->waiting = 0;
}

void mp_evset_wake(mp_evset_t *set)
{
    if (!set->waiting || set->woken)
        return;                     /* nobody waits, or already told */
    set->woken = 1;
    (void)set->poller->wake(set->state);
}

/* ---- registrations ------------------------------------------------------ */

static int record(mp_evset_t *set, unsigned int slot, unsigned int events)
{
    struct mp_reg *r = &set->regs[slot];
    unsigned int old = r->watch;
    unsigned int now;

    r->interest = events;
    r->armed = MP_FD_WATCHED;
    now = wanted(r);
    /* "Issuing a WSAEventSelect for a socket cancels any previous one" and
     * records anew what holds now: with the same bits still watched, an
     * edge-style poller (wsaevent) would not look again, so the socket
     * leaves the poller and comes back, as a fresh registration. */
    if (now == old && now != 0) {
        if (set->poller->watch(set->state, r->sock, slot, old, 0) < 0)
            return -1;
        r->watch = old = 0;
    }
    if (now != old && set->poller->watch(set->state, r->sock, slot, old, now) < 0)
        return -1;
    r->watch = now;
    return 0;
}

int mp_evset_add(mp_evset_t *set, mp_sock_t s, unsigned int events, unsigned int *slot)
{
    unsigned int i;

    if ((events & ~(unsigned int)MP_FD_ALL_EVENTS) != 0)
        return mp__fail(MP_WSAEINVAL);
    if (s == MP_INVALID_SOCKET)
        return mp__fail(MP_WSAENOTSOCK);
    if (set->nfree > 0) {
        i = set->free_slots[--set->nfree];
    } else {
        if (set->high == set->cap && grow(set) < 0)
            return -1;
        i = set->high++;
    }
    {   /* a reused slot may still sit in the dirty, posted or timed list */
        unsigned char dirty = set->regs[i].dirty, queued = set->regs[i].queued;
        unsigned char timed = set->regs[i].timed;
        memset(&set->regs[i], 0, sizeof(set->regs[i]));
        set->regs[i].dirty = dirty;
        set->regs[i].queued = queued;
        set->regs[i].timed = timed;
    }
    set->regs[i].sock = s;
    set->regs[i].in_use = 1;
    if (record(set, i, events) < 0) {
        set->regs[i].in_use = 0;
        set->free_slots[set->nfree++] = i;
        return -1;
    }
    *slot = i;
    return 0;
}

int mp_evset_modify(mp_evset_t *set, unsigned int slot, unsigned int events)
{
    if ((events & ~(unsigned int)MP_FD_ALL_EVENTS) != 0)
        return mp__fail(MP_WSAEINVAL);
    if (live(set, slot) == NULL)
        return -1;
    return record(set, slot, events);
}

int mp_evset_remove(mp_evset_t *set, unsigned int slot)
{
    struct mp_reg *r = live(set, slot);
    int rc = 0;

    if (r == NULL)
        return -1;
    if (r->watch != 0)
        rc = set->poller->watch(set->state, r->sock, slot, r->watch, 0);
    /* Removed even if the poller complained (a socket closed behind our
     * back has already left it).  Reused only after the next prepare, so a
     * ready record still in flight cannot name a newer registration. */
    r->in_use = 0;
    r->watch = 0;
    r->posted = 0;
    r->due_events = 0;
    set->retiring[set->nretiring++] = slot;
    return rc;
}

int mp_evset_drop(mp_evset_t *set, unsigned int slot)
{
    struct mp_reg *r = live(set, slot);
    int code;

    if (r == NULL)
        return -1;
    if (r->watch != 0)
        (void)set->poller->watch(set->state, r->sock, slot, r->watch, 0);
    r->watch = 0;
    r->interest = 0;                /* nothing more fires from the poller */
    r->armed = 0;
    r->dropped = 1;
    r->due_events = 0;
    mp__set_wsa_error(MP_WSAECONNABORTED);
    code = mp__last_error();
    r->posted = MP_FD_CLOSE;
    r->posted_error[bit_index(MP_FD_CLOSE)] = code;
    if (!r->queued) {
        r->queued = 1;
        set->posted[set->nposted++] = slot;
    }
    mp_evset_wake(set);
    return 0;
}

void mp_evset_rearm(mp_evset_t *set, unsigned int slot, unsigned int events)
{
    struct mp_reg *r;

    if (slot >= set->high || !set->regs[slot].in_use)
        return;
    r = &set->regs[slot];
    events &= MP_FD_WATCHED & ~r->armed;
    if (events == 0)
        return;
    r->armed |= events;
    if (wanted(r) != r->watch)
        mark_dirty(set, slot);
}

int mp_evset_post(mp_evset_t *set, unsigned int slot, unsigned int event, int error)
{
    struct mp_reg *r = live(set, slot);

    if (r == NULL)
        return -1;
    if (event == 0 || (event & (event - 1)) != 0 || (event & ~(unsigned int)MP_FD_ALL_EVENTS))
        return mp__fail(MP_WSAEINVAL);
    r->posted |= event;
    r->posted_error[bit_index(event)] = error;
    if (!r->queued) {
        r->queued = 1;
        set->posted[set->nposted++] = slot;
    }
    mp_evset_wake(set);
    return 0;
}

int mp_evset_post_at(mp_evset_t *set, unsigned int slot, unsigned int event, uint64_t due_ns)
{
    struct mp_reg *r = live(set, slot);

    if (r == NULL)
        return -1;
    if (event == 0 || (event & (event - 1)) != 0 || (event & ~(unsigned int)MP_FD_ALL_EVENTS))
        return mp__fail(MP_WSAEINVAL);
    if (!(r->interest & event) || r->dropped)
        return 0;                       /* nobody asked: nothing will report it */
    if (r->due_events == 0 || due_ns < r->due_ns) {
        r->due_ns = due_ns;             /* the earlier time wins */
        mp_evset_wake(set);             /* a running wait's timeout may be too long now */
    }
    r->due_events |= event;
    if (!r->timed) {
        r->timed = 1;
        set->timed[set->ntimed++] = slot;
    }
    return 0;
}

/* The earliest due time of a live registration; the timed list loses the
 * slots that have none any more.  0: none. */
static uint64_t earliest_due(mp_evset_t *set)
{
    uint64_t first = 0;
    unsigned int i = 0;

    while (i < set->ntimed) {
        struct mp_reg *r = &set->regs[set->timed[i]];
        if (!r->in_use || r->due_events == 0) {
            r->timed = 0;
            set->timed[i] = set->timed[--set->ntimed];
            continue;
        }
        if (first == 0 || r->due_ns < first)
            first = r->due_ns;
        i++;
    }
    return first;
}

unsigned int mp_evset_posted(const mp_evset_t *set, unsigned int slot)
{
    if (slot >= set->high || !set->regs[slot].in_use)
        return 0;
    return set->regs[slot].posted;
}

/* ---- waiting ------------------------------------------------------------ */

int mp_evset_prepare(mp_evset_t *set, int *timeout_ms)
{
    unsigned int i;

    for (i = 0; i < set->nretiring; i++)
        set->free_slots[set->nfree++] = set->retiring[i];
    set->nretiring = 0;
    for (i = 0; i < set->ndirty; i++) {
        struct mp_reg *r = &set->regs[set->dirty[i]];
        unsigned int now = wanted(r);
        r->dirty = 0;
        if (!r->in_use || now == r->watch)
            continue;
        /* A socket closed without unregistering fails here: it watches
         * nothing from now on, and its registration stays until removed. */
        if (set->poller->watch(set->state, r->sock, set->dirty[i], r->watch, now) < 0)
            now = 0;
        r->watch = now;
    }
    set->ndirty = 0;
    if (set->poller->sync != NULL)
        set->poller->sync(set->state);
    set->waiting = 1;
    set->woken = 0;
    if (set->nposted > 0)
        *timeout_ms = 0;
    if (set->ntimed > 0) {
        uint64_t due = earliest_due(set), now = mp__monotonic_ns();
        if (due != 0) {
            uint64_t left = due > now ? due - now : 0;
            /* Whole ms, rounded up: the wait ends at or after the due time. */
            uint64_t ms = left / 1000000u + (left % 1000000u != 0);
            if (ms > 0x7fffffffu)
                ms = 0x7fffffffu;
            if (*timeout_ms < 0 || (uint64_t)*timeout_ms > ms)
                *timeout_ms = (int)ms;
        }
    }
    return 0;
}

int mp_evset_poll(mp_evset_t *set, int timeout_ms)
{
    return set->poller->wait(set->state, timeout_ms, set->ready, set->max_ready);
}

static mp_netevents_t *out_for(mp_evset_t *set, unsigned int slot, int *n)
{
    struct mp_reg *r = &set->regs[slot];
    mp_netevents_t *o;

    if (r->out_epoch == set->epoch)
        return &set->out[r->out_pos];
    r->out_epoch = set->epoch;
    r->out_pos = (unsigned int)(*n)++;
    o = &set->out[r->out_pos];
    memset(o, 0, sizeof(*o));
    o->slot = slot;
    return o;
}

static void fire(mp_evset_t *set, const mp_ready_t *rd, int *n)
{
    unsigned int slot = rd->slot, what = rd->what;
    struct mp_reg *r = &set->regs[slot];
    unsigned int may = r->interest & r->armed;
    unsigned int ev = 0;

    if ((what & (MP_POLL_IN | MP_POLL_ERR | MP_POLL_HUP)) && (may & MP_FD_READ))
        ev |= MP_FD_READ;
    if ((what & (MP_POLL_OUT | MP_POLL_ERR)) && (may & MP_FD_WRITE))
        ev |= MP_FD_WRITE;
    if ((what & MP_POLL_HUP) && (may & MP_FD_CLOSE))
        ev |= MP_FD_CLOSE;
    r->armed &= ~ev;
    if (wanted(r) != r->watch)
        mark_dirty(set, slot);   /* drop what was disarmed, at the next prepare */
    if (ev == 0)
        return;
    {
        mp_netevents_t *o = out_for(set, slot, n);
        static const unsigned int each[] = {MP_FD_READ, MP_FD_WRITE, MP_FD_CLOSE};
        int so_error = -1, b;
        o->events |= ev;
        for (b = 0; b < 3; b++) {
            int code = 0;
            if (!(ev & each[b]))
                continue;
            if (mp__ready_error(rd, each[b], so_error, &code) > 0) {
                so_error = mp__socket_error(r->sock);     /* read (and cleared) once */
                (void)mp__ready_error(rd, each[b], so_error, &code);
            }
            o->errors[bit_index(each[b])] = code;
        }
    }
}

/* The per-event code (spec, WSAEnumNetworkEvents: "iErrorCode: an array
 * that contains any associated error codes, with an array index that
 * corresponds to the position of event bits in lNetworkEvents"): a poller
 * that read them (wsaevent) is believed; the others only say MP_POLL_ERR,
 * and the socket's pending error is its code. */
int mp__ready_error(const mp_ready_t *r, unsigned int fd_event, int so_error, int *out)
{
    int i = fd_event == MP_FD_READ ? MP_READY_IN : fd_event == MP_FD_WRITE ? MP_READY_OUT
                                                                           : MP_READY_HUP;

    *out = 0;
    if (r->has_codes) {
        *out = r->codes[i];
        return 0;
    }
    /* A reset stream (rooted control connection) reports HUP with ERR:
     * Winsock's FD_CLOSE then carries WSAECONNRESET, so FD_CLOSE reads the
     * pending error too. */
    if (!(r->what & MP_POLL_ERR))
        return 0;
    if (r->error != 0) {                 /* read with the event (kqueue) */
        *out = r->error;
        return 0;
    }
    if (so_error < 0)
        return 1;
    *out = so_error;
    return 0;
}

int mp_evset_collect(mp_evset_t *set, int nready, const mp_netevents_t **out)
{
    int n = 0, i;
    unsigned int k;

    set->waiting = 0;
    set->epoch++;
    if (set->epoch == 0)     /* wrapped: no registration may match by accident */
        set->epoch = 1;
    for (i = 0; i < nready; i++) {
        unsigned int slot = set->ready[i].slot;
        if (slot < set->high && set->regs[slot].in_use)
            fire(set, &set->ready[i], &n);
        memset(&set->ready[i], 0, sizeof(set->ready[i]));  /* codes: 0 for the next poll */
    }
    for (k = 0; k < set->nposted; k++) {
        unsigned int slot = set->posted[k];
        struct mp_reg *r = &set->regs[slot];
        unsigned int ev = r->posted & (r->dropped ? MP_FD_CLOSE : r->interest);
        r->queued = 0;
        if (r->in_use && ev != 0) {
            mp_netevents_t *o = out_for(set, slot, &n);
            unsigned int b;
            o->events |= ev;
            for (b = 0; b < MP_FD_MAX_EVENTS; b++)
                if (ev & (1u << b))
                    o->errors[b] = r->posted_error[b];
        }
        r->posted = 0;
        if (r->in_use && r->dropped) {     /* reported: the registration goes */
            r->in_use = 0;
            set->retiring[set->nretiring++] = slot;
        }
    }
    set->nposted = 0;
    if (set->ntimed > 0) {
        uint64_t now = mp__monotonic_ns();
        for (k = 0; k < set->ntimed; k++) {
            unsigned int slot = set->timed[k];
            struct mp_reg *r = &set->regs[slot];
            unsigned int ev;
            if (!r->in_use || r->due_events == 0 || r->due_ns > now)
                continue;
            ev = r->due_events & r->interest;
            r->due_events = 0;          /* the timed list drops it at the next prepare */
            if (ev != 0) {
                mp_netevents_t *o = out_for(set, slot, &n);
                unsigned int b;
                o->events |= ev;
                for (b = 0; b < MP_FD_MAX_EVENTS; b++)
                    if (ev & (1u << b))
                        o->errors[b] = 0;
            }
        }
    }
    *out = set->out;
    return n;
}
