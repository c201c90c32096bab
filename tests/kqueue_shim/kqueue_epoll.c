/* kqueue_epoll.c -- kqueue(2) and kevent(2) over epoll, for the test build
 * that runs ext/posix/kqueue_darwin.c unchanged on Linux (README.md beside
 * this file).  Never part of a release build.
 *
 * What it keeps of XNU's socket filters (bsd/kern/uipc_socket.c,
 * filt_soread/filt_sowrite, and kevent(2)):
 * - knotes are level-triggered: EVFILT_READ is active while data is queued,
 *   EVFILT_WRITE while the send buffer has room;
 * - a pending socket error activates both filters with no flag set (XNU's
 *   "temporary udp error"): the error itself is read with SO_ERROR or the
 *   next receive, never from the event;
 * - a read side that was shut down activates EVFILT_READ with EV_EOF, a hang-up
 *   EVFILT_WRITE with EV_EOF;
 * - EV_ERROR only for a change that failed: placed in the eventlist (data =
 *   errno) while it has room, and then kevent returns at once with those;
 *   with no room kevent fails with the errno;
 * - EV_CLEAR with NOTE_LOWAT on EVFILT_READ (kqueue_darwin.c's close-only
 *   watch): the knote wakes for EOF and for a socket error, not for data
 *   (filt_soread tests both before the low-water mark), edge-triggered
 *   (EPOLLET) while it is the descriptor's only knote;
 * - EV_ADD on an existing knote updates its udata and low-water mark but not
 *   its EV_CLEAR (XNU keeps a knote's flags from its first EV_ADD), EV_DELETE
 *   of a missing one is ENOENT, a change on a descriptor that is not open is EBADF, and closing
 *   a descriptor drops its knotes.
 * What it does not do: EV_EOF's fflags is always 0 (XNU puts the socket's
 * error there; Linux cannot read that error without clearing it); a full
 * receive buffer (XNU lowers NOTE_LOWAT to its size) never activates an
 * EV_CLEAR knote; and every other flag and fflag (EV_CLEAR without
 * NOTE_LOWAT, either on EVFILT_WRITE) is refused with EINVAL, so that code
 * relying on more fails loudly here rather than passing untested.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "sys/event.h"

#define HAS_READ  0x1u
#define HAS_WRITE 0x2u

typedef struct knotes {
    unsigned int filters;       /* HAS_READ | HAS_WRITE */
    unsigned int read_clear;    /* the read knote has EV_CLEAR | NOTE_LOWAT */
    void *udata_read;
    void *udata_write;
} knotes_t;

typedef struct kq {
    pthread_mutex_t lock;
    knotes_t *fds;              /* indexed by descriptor */
    size_t nfds;
} kq_t;

/* One state per epoll descriptor number, made on first use and reset when
 * kqueue() hands out the number again (the old queue was closed). */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static kq_t **registry;
static size_t registry_size;

static kq_t *state_of(int kq, int fresh)
{
    kq_t *st = NULL;

    if (kq < 0)
        return NULL;
    pthread_mutex_lock(&registry_lock);
    if ((size_t)kq >= registry_size && fresh) {
        size_t n = (size_t)kq * 2 + 16;
        kq_t **p = realloc(registry, n * sizeof(*p));
        if (p != NULL) {
            memset(p + registry_size, 0, (n - registry_size) * sizeof(*p));
            registry = p;
            registry_size = n;
        }
    }
    if ((size_t)kq < registry_size) {
        st = registry[kq];
        if (st == NULL && fresh && (st = calloc(1, sizeof(*st))) != NULL) {
            pthread_mutex_init(&st->lock, NULL);
            registry[kq] = st;
        } else if (st != NULL && fresh) {
            pthread_mutex_lock(&st->lock);
            free(st->fds);
            st->fds = NULL;
            st->nfds = 0;
            pthread_mutex_unlock(&st->lock);
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return st;
}

int kqueue(void)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);

    if (epfd >= 0 && state_of(epfd, 1) == NULL) {
        close(epfd);
        errno = ENOMEM;
        return -1;
    }
    return epfd;
}

static knotes_t *knotes_of(kq_t *st, int fd, int grow)
{
    if ((size_t)fd >= st->nfds) {
        size_t n = (size_t)fd * 2 + 16;
        knotes_t *p;
        if (!grow)
            return NULL;
        if ((p = realloc(st->fds, n * sizeof(*p))) == NULL)
            return NULL;
        memset(p + st->nfds, 0, (n - st->nfds) * sizeof(*p));
        st->fds = p;
        st->nfds = n;
    }
    return &st->fds[fd];
}

/* A close-only (EV_CLEAR) read knote watches EOF alone (errors come
 * anyway), edge-triggered unless a level write knote shares the descriptor. */
static uint32_t epoll_mask(unsigned int filters, unsigned int read_clear)
{
    uint32_t read = read_clear ? (uint32_t)EPOLLRDHUP : (uint32_t)(EPOLLIN | EPOLLRDHUP);

    return ((filters & HAS_READ) ? read : 0u) | ((filters & HAS_WRITE) ? (uint32_t)EPOLLOUT : 0u) |
           ((filters == HAS_READ && read_clear) ? (uint32_t)EPOLLET : 0u);
}

/* Applies one change under st->lock: 0, or an errno. */
static int apply(int epfd, kq_t *st, const struct kevent *ch)
{
    int fd = (int)ch->ident;
    unsigned int bit, before, after, clear, read_clear;
    struct epoll_event ev;
    knotes_t *k;

    if (ch->ident > (uintptr_t)INT_MAX || fcntl(fd, F_GETFD) < 0) {
        if ((k = knotes_of(st, (int)(ch->ident & INT_MAX), 0)) != NULL && ch->ident <= INT_MAX)
            memset(k, 0, sizeof(*k));          /* closed: its knotes went with it */
        return EBADF;
    }
    if (ch->filter == EVFILT_READ)
        bit = HAS_READ;
    else if (ch->filter == EVFILT_WRITE)
        bit = HAS_WRITE;
    else
        return EINVAL;
    clear = (ch->flags & EV_CLEAR) != 0;
    if ((ch->flags & ~(EV_ADD | EV_DELETE | EV_CLEAR)) != 0 ||
        ((ch->flags & EV_ADD) != 0) == ((ch->flags & EV_DELETE) != 0) ||
        ch->fflags != (clear ? (uint32_t)NOTE_LOWAT : 0u) ||
        (clear && (bit != HAS_READ || !(ch->flags & EV_ADD))))
        return EINVAL;
    if ((k = knotes_of(st, fd, 1)) == NULL)
        return ENOMEM;
    before = k->filters;
    after = (ch->flags & EV_ADD) ? before | bit : before & ~bit;
    if ((ch->flags & EV_DELETE) && !(before & bit))
        return ENOENT;
    /* A new read knote takes EV_CLEAR from this change; an existing one keeps its own. */
    read_clear = bit != HAS_READ ? k->read_clear : (before & bit) ? k->read_clear
                 : (ch->flags & EV_ADD) ? clear : 0u;
    if (!(after & HAS_READ))
        read_clear = 0;
    memset(&ev, 0, sizeof(ev));
    ev.events = epoll_mask(after, read_clear);
    ev.data.fd = fd;
    if (before == 0) {
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            return errno;
    } else if (after == 0) {
        if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev) < 0 && errno != ENOENT)
            return errno;
    } else if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
        /* ENOENT: the descriptor was closed and its number reused, and
         * closing dropped the old knotes, as it does on XNU. */
        if (errno != ENOENT)
            return errno;
        if (ch->flags & EV_DELETE) {
            memset(k, 0, sizeof(*k));
            return ENOENT;
        }
        memset(k, 0, sizeof(*k));
        after = bit;
        read_clear = bit == HAS_READ ? clear : 0u;
        ev.events = epoll_mask(after, read_clear);
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            return errno;
    }
    k->filters = after;
    k->read_clear = read_clear;
    if (bit == HAS_READ)
        k->udata_read = (ch->flags & EV_ADD) ? ch->udata : NULL;
    else
        k->udata_write = (ch->flags & EV_ADD) ? ch->udata : NULL;
    return 0;
}

static intptr_t readable_bytes(int fd)
{
    int n = 0;
    return ioctl(fd, FIONREAD, &n) == 0 ? (intptr_t)n : 0;
}

/* The active knotes of one epoll report, as XNU's filters would show them:
 * how many kevents were written to out (at most room). */
static int translate(kq_t *st, const struct epoll_event *e, struct kevent *out, int room)
{
    int fd = e->data.fd, n = 0;
    uint32_t got = e->events;
    knotes_t *k = knotes_of(st, fd, 0);

    if (k == NULL || k->filters == 0)
        return 0;
    if ((k->filters & HAS_READ) && n < room &&
        (got & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))) {
        uint16_t flags = (uint16_t)(((got & (EPOLLRDHUP | EPOLLHUP)) ? EV_EOF : 0) |
                                    (k->read_clear ? EV_CLEAR : 0));
        EV_SET(&out[n], (uintptr_t)fd, EVFILT_READ, flags, 0, readable_bytes(fd), k->udata_read);
        n++;
    }
    if ((k->filters & HAS_WRITE) && n < room && (got & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        uint16_t flags = (got & EPOLLHUP) ? EV_EOF : 0;
        EV_SET(&out[n], (uintptr_t)fd, EVFILT_WRITE, flags, 0, 0, k->udata_write);
        n++;
    }
    return n;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout)
{
    kq_t *st = state_of(kq, 0);
    struct epoll_event ready[64];
    long long deadline = 0;
    int i, nerr = 0, wait_ms = -1;

    if (st == NULL || nchanges < 0 || nevents < 0) {
        errno = st == NULL ? EBADF : EINVAL;
        return -1;
    }
    pthread_mutex_lock(&st->lock);
    for (i = 0; i < nchanges; i++) {
        int err = apply(kq, st, &changelist[i]);
        if (err == 0)
            continue;
        if (nerr >= nevents) {
            pthread_mutex_unlock(&st->lock);
            errno = err;
            return -1;
        }
        eventlist[nerr] = changelist[i];
        eventlist[nerr].flags = EV_ERROR;
        eventlist[nerr].data = err;
        nerr++;
    }
    pthread_mutex_unlock(&st->lock);
    if (nerr > 0 || nevents == 0)
        return nerr;
    if (timeout != NULL) {
        long long ms = (long long)timeout->tv_sec * 1000 + (timeout->tv_nsec + 999999) / 1000000;
        wait_ms = ms > INT_MAX ? INT_MAX : (int)ms;
        deadline = mono_ms() + wait_ms;
    }
    for (;;) {
        int max = nevents < 64 ? nevents : 64, got, n = 0;

        got = epoll_wait(kq, ready, max, wait_ms);
        if (got < 0)
            return -1;
        pthread_mutex_lock(&st->lock);
        for (i = 0; i < got && n < nevents; i++)
            n += translate(st, &ready[i], eventlist + n, nevents - n);
        pthread_mutex_unlock(&st->lock);
        if (n > 0 || got == 0)
            return n;
        /* Reported, but no knote active (a change raced the wait): wait on. */
        if (timeout != NULL) {
            long long left = deadline - mono_ms();
            if (left <= 0)
                return 0;
            wait_ms = (int)left;
        }
    }
}
