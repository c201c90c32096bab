/* kqueue_darwin.c -- the kqueue poller (macOS), to the contract of
 * poller.h.  What to ask kevent(2) for and how to read its answer are
 * decided in ../kqueue_rules.c (os_rules.h), which the Linux suite tests;
 * this file only turns those decisions into kevent's values.  CI runs it
 * over an epoll emulation (tests/kqueue_shim); a Mac has not run it yet.
 *
 * The wake-up handle (poller.h) is a self-pipe (wake_pipe.c) whose read end
 * has a level EVFILT_READ knote, known by its ident.  A pipe rather than
 * EVFILT_USER: the shim emulates the socket filters only, and a pipe's
 * read filter is the same one the sockets use. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/event.h>

#include "../os_rules.h"
#include "../poller.h"
#include "wake_pipe.h"

typedef struct {
    int kq;
    struct kevent *events;
    mp_wake_pipe_t wake;
} kq_state;

static int kq_open(void **state, int max_ready)
{
    kq_state *st = calloc(1, sizeof(*st));

    if (st == NULL || (st->events = calloc((size_t)max_ready, sizeof(*st->events))) == NULL) {
        free(st);
        errno = ENOBUFS;
        return -1;
    }
    st->wake.rd = st->wake.wr = -1;
    st->kq = kqueue();
    if (st->kq >= 0 && mp__wake_pipe_open(&st->wake) == 0) {
        struct kevent ch;
        EV_SET(&ch, st->wake.rd, EVFILT_READ, EV_ADD, 0u, 0, NULL);
        if (kevent(st->kq, &ch, 1, NULL, 0, NULL) == 0) {
            *state = st;
            return 0;
        }
    }
    {
        int saved = errno;
        if (st->kq >= 0)
            close(st->kq);
        mp__wake_pipe_close(&st->wake);
        free(st->events);
        free(st);
        errno = saved;
        return -1;
    }
}

static void kq_close(void *state)
{
    kq_state *st = state;
    close(st->kq);
    mp__wake_pipe_close(&st->wake);
    free(st->events);
    free(st);
}

/* "The queue is not inherited by a child created with fork(2)" (kqueue(2)):
 * in a child st->kq names no queue, maybe another file, and stays open.
 * The pipe is inherited: the child closes its own copies of it. */
static void kq_forget(void *state)
{
    kq_state *st = state;
    mp__wake_pipe_close(&st->wake);
    free(st->events);
    free(st);
}

/* Each change of mp__kq_plan as a kevent: a close-only read filter is
 * edge-triggered (EV_CLEAR) with a low-water mark no datagram reaches, so
 * that EOF and socket errors wake it (filt_soread tests them before the
 * mark) and data that waits to be read does not. */
static int kq_watch(void *state, mp_sock_t s, unsigned int slot, unsigned int before,
                    unsigned int after)
{
    kq_state *st = state;
    mp_kq_change_t plan[MP_KQ_MAX_CHANGES];
    struct kevent ch[MP_KQ_MAX_CHANGES];
    int n = mp__kq_plan(before, after, plan), i;

    for (i = 0; i < n; i++) {
        int close_only = plan[i].action == MP_KQ_ADD_CLOSE;
        unsigned short flags = plan[i].action == MP_KQ_DELETE ? EV_DELETE
                               : close_only               ? EV_ADD | EV_CLEAR
                                                          : EV_ADD;
        EV_SET(&ch[i], s, plan[i].filter == MP_KQ_READ ? EVFILT_READ : EVFILT_WRITE, flags,
               close_only ? NOTE_LOWAT : 0u, close_only ? MP_KQ_CLOSE_LOWAT : 0,
               (void *)(uintptr_t)slot);
    }
    return n ? kevent(st->kq, ch, n, NULL, 0, NULL) : 0;
}

static int kq_wait(void *state, int timeout_ms, mp_ready_t *ready, int max_ready)
{
    kq_state *st = state;
    struct timespec ts, *tp = NULL;
    int n, i, got = 0;

    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tp = &ts;
    }
    n = kevent(st->kq, NULL, 0, st->events, max_ready, tp);
    for (i = 0; i < n; i++) {
        const struct kevent *e = &st->events[i];
        mp_kq_event_t ke;
        if (e->ident == (uintptr_t)st->wake.rd && e->filter == EVFILT_READ) {
            mp__wake_pipe_drain(&st->wake);
            continue;
        }
        ke.filter = e->filter == EVFILT_READ ? MP_KQ_READ : MP_KQ_WRITE;
        ke.flags = ((e->flags & EV_EOF) ? MP_KQ_EOF : 0u) |
                   ((e->flags & EV_ERROR) ? MP_KQ_ERROR : 0u);
        ke.fflags = (unsigned int)e->fflags;
        ke.data = (long long)e->data;
        ready[got].slot = (unsigned int)(uintptr_t)e->udata;
        ready[got].what = mp__kq_report(&ke, &ready[got].error);
        got++;
    }
    return n < 0 ? n : got;
}

static int kq_wake(void *state)
{
    kq_state *st = state;
    return mp__wake_pipe_signal(&st->wake);
}

const mp_poller_t mp__poller_kqueue = {"kqueue", kq_open, kq_close, kq_watch, NULL,
                                       kq_wait, kq_forget, kq_wake};
