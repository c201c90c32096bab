/* kqueue_darwin.c -- the kqueue poller (macOS).  Not built or run in this
 * repository's CI yet (Linux only); kept to the same contract as epoll. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/event.h>

#include "../poller.h"

typedef struct {
    int kq;
    struct kevent *events;
} kq_state;

static int kq_open(void **state, int max_ready)
{
    kq_state *st = calloc(1, sizeof(*st));

    if (st == NULL || (st->events = calloc((size_t)max_ready, sizeof(*st->events))) == NULL) {
        free(st);
        errno = ENOBUFS;
        return -1;
    }
    st->kq = kqueue();
    if (st->kq < 0) {
        int saved = errno;
        free(st->events);
        free(st);
        errno = saved;
        return -1;
    }
    *state = st;
    return 0;
}

static void kq_close(void *state)
{
    kq_state *st = state;
    close(st->kq);
    free(st->events);
    free(st);
}

/* "The queue is not inherited by a child created with fork(2)" (kqueue(2)):
 * in a child st->kq names no queue, maybe another file; only memory goes. */
static void kq_forget(void *state)
{
    kq_state *st = state;
    free(st->events);
    free(st);
}

/* One filter per direction: EVFILT_READ also reports EOF (hang-up). */
static int kq_watch(void *state, mp_sock_t s, unsigned int slot, unsigned int before,
                    unsigned int after)
{
    kq_state *st = state;
    struct kevent ch[2];
    int n = 0;
    unsigned int rb = before & (MP_POLL_IN | MP_POLL_HUP), ra = after & (MP_POLL_IN | MP_POLL_HUP);

    if ((rb != 0) != (ra != 0))
        EV_SET(&ch[n++], s, EVFILT_READ, ra ? EV_ADD : EV_DELETE, 0, 0,
               (void *)(uintptr_t)slot);
    if (((before & MP_POLL_OUT) != 0) != ((after & MP_POLL_OUT) != 0))
        EV_SET(&ch[n++], s, EVFILT_WRITE, (after & MP_POLL_OUT) ? EV_ADD : EV_DELETE, 0, 0,
               (void *)(uintptr_t)slot);
    return n ? kevent(st->kq, ch, n, NULL, 0, NULL) : 0;
}

static int kq_wait(void *state, int timeout_ms, mp_ready_t *ready, int max_ready)
{
    kq_state *st = state;
    struct timespec ts, *tp = NULL;
    int n, i;

    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tp = &ts;
    }
    n = kevent(st->kq, NULL, 0, st->events, max_ready, tp);
    for (i = 0; i < n; i++) {
        const struct kevent *e = &st->events[i];
        ready[i].slot = (unsigned int)(uintptr_t)e->udata;
        ready[i].what = (e->filter == EVFILT_READ ? MP_POLL_IN : MP_POLL_OUT) |
                        ((e->flags & EV_ERROR) ? MP_POLL_ERR : 0u) |
                        ((e->flags & EV_EOF) && e->filter == EVFILT_READ ? MP_POLL_HUP : 0u);
    }
    return n;
}

const mp_poller_t mp__poller_kqueue = {"kqueue", kq_open, kq_close, kq_watch, NULL, kq_wait, kq_forget};
