/* poller.h -- what an OS readiness poller provides to events.c.
 *
 * A poller only reports readiness (in, out, error, hang-up) for the sockets
 * events.c asks it to watch; Winsock's one-shot and re-enabling rules live
 * in events.c, once, for every poller.  Each poller file (epoll_linux.c,
 * kqueue_darwin.c, poll.c, ...) defines one mp_poller_t; the per-OS file
 * lists them in mp__pollers.
 *
 * Threads: wait() runs without the caller's lock and touches only the
 * poller's own wait buffers; every other function runs under the lock and
 * may be called while another thread is inside wait().
 *
 * Wake-up: every poller keeps one wake-up handle per state, watched by its
 * wait() beside the sockets (epoll: an eventfd; poll and kqueue: a
 * self-pipe, wake_pipe.c; wsaevent: its event object 0; wsapoll: a
 * self-connected loopback UDP socket).  wake() signals it; the wait it ends
 * (or, with none running, the next) drains it and returns what is ready,
 * maybe 0, never reporting the handle itself.  events.c calls wake() only
 * while a wait runs, at most once per wait (mp_evset_wake).
 */
#ifndef MP_POLLER_H
#define MP_POLLER_H

#include "mpoint.h"

#define MP_POLL_IN   0x1u
#define MP_POLL_OUT  0x2u
#define MP_POLL_ERR  0x4u
#define MP_POLL_HUP  0x8u   /* peer closed / read side shut down */

typedef struct mp_ready {
    unsigned int slot;
    unsigned int what;       /* MP_POLL_* */
    /* With MP_POLL_ERR: the socket error the poller read with the event
     * (kqueue: EV_EOF's fflags), or 0 and events.c reads SO_ERROR.  A
     * poller that never reads one leaves it 0 (events.c zeroes the array). */
    int error;
    /* The poller's own error code per event, where the system gives one
     * (WSAEnumNetworkEvents' iErrorCode[FD_READ_BIT / FD_WRITE_BIT /
     * FD_CLOSE_BIT]): indexed MP_READY_IN, _OUT, _HUP; with has_codes 0
     * (every other poller) events.c asks the socket (SO_ERROR) on
     * MP_POLL_ERR.  events.c zeroes each record after it read it, so a
     * poller that never sets them leaves them 0. */
    int codes[3];
    int has_codes;
} mp_ready_t;

#define MP_READY_IN  0
#define MP_READY_OUT 1
#define MP_READY_HUP 2

/* events.c: the error code to report for FD_* event (READ, WRITE or CLOSE)
 * of ready record r: the poller's own code when it gave codes, else, on
 * MP_POLL_ERR, *so_error (read once by the caller, -1 meaning "not read
 * yet": then 1 is returned with *so_error untouched, asking for it), else 0.
 * Portable so that every suite tests it (ext/decide.pxi). */
int mp__ready_error(const mp_ready_t *r, unsigned int fd_event, int so_error, int *out);

typedef struct mp_poller {
    const char *name;
    /* Creates the poller's state with room to report up to max_ready at once. */
    int (*open)(void **state, int max_ready);
    void (*close)(void *state);
    /* Changes what is watched on s (registration `slot`) from `before` to
     * `after` (MP_POLL_IN/OUT/HUP bits).  0 means "not in the poller": 0 ->
     * x adds, x -> 0 removes.  A socket watched for nothing must not be
     * reported at all, not even for errors or hang-ups. */
    int (*watch)(void *state, mp_sock_t s, unsigned int slot, unsigned int before,
                 unsigned int after);
    /* Optional: called under the lock before each wait (poll.c copies its
     * table there for the waiting thread). */
    void (*sync)(void *state);
    /* Blocks up to timeout_ms (-1: forever); fills ready, returns the count
     * or -1 with the platform error (EINTR included). */
    int (*wait)(void *state, int timeout_ms, mp_ready_t *ready, int max_ready);
    /* Optional: frees the state in a child process after fork(), where the
     * poller's kernel object may not be the child's (kqueue is not
     * inherited, and its descriptor number may already name another file).
     * NULL: close() is right in a child too (an epoll descriptor is the
     * child's own copy: closing it never changes the interest list).
     * Either way the child's copies of the wake-up handle are closed. */
    void (*forget)(void *state);
    /* Ends a wait() running in another thread early (see "Wake-up" above):
     * 0, or -1 with the platform error (events.c ignores it: the wait then
     * ends with its slice, as it did before wake-ups). */
    int (*wake)(void *state);
} mp_poller_t;

/* The pollers of this OS, best first, NULL-terminated (linux.c, darwin.c). */
extern const mp_poller_t *const mp__pollers[];

#endif /* MP_POLLER_H */
