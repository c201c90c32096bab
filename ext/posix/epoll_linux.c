/* epoll_linux.c -- the epoll poller (Linux), level-triggered.
 * Cost per wait is O(ready), independent of how many sockets are watched.
 * The wake-up handle (poller.h) is an eventfd in the epoll set, named by
 * EP_WAKE where a socket's slot would be (slots stay below 2^31). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "../poller.h"

#define EP_WAKE UINT32_MAX

typedef struct {
    int epfd;
    int wakefd;
    struct epoll_event *events;
} epoll_state;

static void ep_free(epoll_state *st)
{
    if (st->epfd >= 0)
        close(st->epfd);
    if (st->wakefd >= 0)
        close(st->wakefd);
    free(st->events);
    free(st);
}

static int ep_open(void **state, int max_ready)
{
    epoll_state *st = calloc(1, sizeof(*st));
    struct epoll_event ev = {0};
    int saved;

    if (st == NULL) {
        errno = ENOBUFS;
        return -1;
    }
    st->wakefd = -1;
    st->events = calloc((size_t)max_ready, sizeof(*st->events));
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (st->events == NULL || st->epfd < 0) {
        saved = st->events == NULL ? ENOBUFS : errno;
        goto fail;
    }
    st->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.u32 = EP_WAKE;
    if (st->wakefd < 0 || epoll_ctl(st->epfd, EPOLL_CTL_ADD, st->wakefd, &ev) < 0) {
        saved = errno;
        goto fail;
    }
    *state = st;
    return 0;
fail:
    ep_free(st);
    errno = saved;
    return -1;
}

/* In a child after fork too: both descriptors are the child's own copies,
 * and closing them changes neither the parent's interest list nor its
 * eventfd. */
static void ep_close(void *state)
{
    ep_free(state);
}

static int ep_watch(void *state, mp_sock_t s, unsigned int slot, unsigned int before,
                    unsigned int after)
{
    epoll_state *st = state;
    struct epoll_event ev = {0};
    int op = before == 0 ? EPOLL_CTL_ADD : after == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;

    ev.events = ((after & MP_POLL_IN) ? EPOLLIN : 0u) | ((after & MP_POLL_OUT) ? EPOLLOUT : 0u) |
                ((after & MP_POLL_HUP) ? EPOLLRDHUP : 0u);
    ev.data.u32 = slot;
    return epoll_ctl(st->epfd, op, s, &ev);
}

static int ep_wait(void *state, int timeout_ms, mp_ready_t *ready, int max_ready)
{
    epoll_state *st = state;
    int n = epoll_wait(st->epfd, st->events, max_ready, timeout_ms);
    int i, got = 0;

    for (i = 0; i < n; i++) {
        uint32_t e = st->events[i].events;
        if (st->events[i].data.u32 == EP_WAKE) {
            uint64_t count;
            (void)!read(st->wakefd, &count, sizeof(count));   /* resets it; EAGAIN: already */
            continue;
        }
        ready[got].slot = st->events[i].data.u32;
        ready[got].what = ((e & EPOLLIN) ? MP_POLL_IN : 0u) | ((e & EPOLLOUT) ? MP_POLL_OUT : 0u) |
                          ((e & EPOLLERR) ? MP_POLL_ERR : 0u) |
                          ((e & (EPOLLHUP | EPOLLRDHUP)) ? MP_POLL_HUP : 0u);
        got++;
    }
    return n < 0 ? n : got;
}

static int ep_wake(void *state)
{
    epoll_state *st = state;
    uint64_t one = 1;

    /* EAGAIN only at a count of 2^64 - 2: signalled already. */
    return write(st->wakefd, &one, sizeof(one)) == (ssize_t)sizeof(one) || errno == EAGAIN ? 0
                                                                                              : -1;
}

const mp_poller_t mp__poller_epoll = {"epoll", ep_open, ep_close, ep_watch, NULL,
                                      ep_wait, NULL, ep_wake};
