/* sys/event.h -- the part of BSD's kqueue(2) API that ext/posix/kqueue_darwin.c
 * uses, for a Linux test build only (tests/kqueue_shim/README.md): the
 * structure, constants and macro with XNU's values, implemented over epoll by
 * kqueue_epoll.c.  Never part of a release build. */
#ifndef MP_KQUEUE_SHIM_EVENT_H
#define MP_KQUEUE_SHIM_EVENT_H

#include <stdint.h>
#include <time.h>

struct kevent {
    uintptr_t ident;        /* the descriptor */
    int16_t filter;         /* EVFILT_* */
    uint16_t flags;         /* EV_* */
    uint32_t fflags;        /* filter flags: NOTE_*; on EV_EOF, the socket's error */
    intptr_t data;          /* bytes readable or writable; on EV_ERROR, errno */
    void *udata;
};

#define EVFILT_READ     (-1)
#define EVFILT_WRITE    (-2)

#define EV_ADD          0x0001
#define EV_DELETE       0x0002
#define EV_ENABLE       0x0004
#define EV_DISABLE      0x0008
#define EV_ONESHOT      0x0010
#define EV_CLEAR        0x0020
#define EV_RECEIPT      0x0040
#define EV_DISPATCH     0x0080
#define EV_ERROR        0x4000
#define EV_EOF          0x8000

/* EVFILT_READ / EVFILT_WRITE: data is the low-water mark. */
#define NOTE_LOWAT      0x00000001

#define EV_SET(kevp, a, b, c, d, e, f) do {     \
        struct kevent *kevp__ = (kevp);         \
        kevp__->ident = (a);                    \
        kevp__->filter = (int16_t)(b);          \
        kevp__->flags = (uint16_t)(c);          \
        kevp__->fflags = (d);                   \
        kevp__->data = (e);                     \
        kevp__->udata = (f);                    \
    } while (0)

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout);

#endif /* MP_KQUEUE_SHIM_EVENT_H */
