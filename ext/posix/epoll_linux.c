/* epoll_linux.c -- the epoll poller (Linux), level-triggered.
 * Cost per wait is O(ready), independent of how many sockets are watched. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "../poller.h"

typedef struct {
    int epfd;
    struct epoll_event *events;
} epoll_state;

static int ep_open(void **state, int max_ready)
{
    epoll_state *st = calloc(1, sizeof(*st));

    if (st == NULL) {
        errno = ENOBUFS;
        return -1;
    }
    st->events = calloc((size_t)max_ready, sizeof(*st->events));
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (st->events == NULL || st->epfd < 0) {
        int saved = st->events == NULL ? ENOBUFS : errno;
        if (st->epfd >= 0)
            close(st->epfd);
        free(st->events);
        free(st);
        errno = saved;
        return -1;
    }
    *state = st;
    return 0;
}

static void ep_close(void *state)
{
    epoll_state *st = state;
    close(st->epfd);
    free(st->events);
    free(st);
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
    int i;

    for (i = 0; i < n; i++) {
        uint32_t e = st->events[i].events;
        ready[i].slot = st->events[i].data.u32;
        ready[i].what = ((e & EPOLLIN) ? MP_POLL_IN : 0u) | ((e & EPOLLOUT) ? MP_POLL_OUT : 0u) |
                        ((e & EPOLLERR) ? MP_POLL_ERR : 0u) |
                        ((e & (EPOLLHUP | EPOLLRDHUP)) ? MP_POLL_HUP : 0u);
    }
    return n;
}

const mp_poller_t mp__poller_epoll = {"epoll", ep_open, ep_close, ep_watch, NULL, ep_wait, NULL};
