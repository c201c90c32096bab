/* os_rules.h -- decisions that per-OS files make, written as portable pure
 * functions so that one suite (Linux's) tests every OS's rule, not only the
 * one of the OS it runs on.  The per-OS file makes the system call; these
 * say what to ask for and how to read the answer.  Compiled on every
 * platform (every C file in ext/); none of them calls the system.
 */
#ifndef MP_OS_RULES_H
#define MP_OS_RULES_H

/* ---- sharing one UDP port among receivers (port_sharing.c) -------------- */

/* Whose rule a stack follows for a second bind of the same UDP port. */
#define MP_PORT_RULE_LINUX 0    /* socket(7): SO_REUSEADDR shares it, any bind address */
#define MP_PORT_RULE_BSD   1    /* XNU, FreeBSD: SO_REUSEADDR shares it only when the bind
                                 * address is multicast; SO_REUSEPORT for any address */

#define MP_SHARE_REUSEADDR 0x1u /* set SO_REUSEADDR */
#define MP_SHARE_REUSEPORT 0x2u /* set SO_REUSEPORT */

/* The SOL_SOCKET options (MP_SHARE_*) a receiver sets so that every
 * receiver of a port may bind it, whatever address it binds: what the
 * spec's several leaves on one group need.  0 for an unknown rule. */
unsigned int mp__port_sharing(int rule);

/* ---- kqueue: which filters a watch needs, how to read a kevent ----------
 * (kqueue_rules.c; used by posix/kqueue_darwin.c, which turns these into
 * EVFILT_*, EV_* and NOTE_* values: kevent(2)). */

#define MP_KQ_READ  1           /* EVFILT_READ */
#define MP_KQ_WRITE 2           /* EVFILT_WRITE */

#define MP_KQ_DELETE     0      /* EV_DELETE */
#define MP_KQ_ADD_LEVEL  1      /* EV_ADD: active while readable (writable) */
#define MP_KQ_ADD_CLOSE  2      /* EV_ADD | EV_CLEAR, NOTE_LOWAT with data
                                 * MP_KQ_CLOSE_LOWAT: wakes for EOF and for a socket
                                 * error, not for data that waits to be read */
#define MP_KQ_CLOSE_LOWAT 0x7fffffff   /* XNU lowers it to the receive buffer's size */

#define MP_KQ_MAX_CHANGES 3

typedef struct mp_kq_change {
    int filter;                 /* MP_KQ_READ, MP_KQ_WRITE */
    int action;                 /* MP_KQ_DELETE, MP_KQ_ADD_* */
} mp_kq_change_t;

/* The changes, in order, that take a socket's knotes from what MP_POLL_*
 * bits `before` needs to what `after` needs; returns how many (0..3).
 * IN needs a level-triggered read filter; HUP without IN (a close-only
 * watch: FD_READ fired and nothing has read yet) needs a read filter that
 * does not wake for readability, or kevent would return at once for as long
 * as the datagram waits; OUT a level-triggered write filter.  XNU keeps a
 * knote's EV_CLEAR from its first EV_ADD, so changing between level and
 * close-only deletes the knote and adds it anew. */
int mp__kq_plan(unsigned int before, unsigned int after, mp_kq_change_t out[MP_KQ_MAX_CHANGES]);

#define MP_KQ_EOF   0x1u        /* EV_EOF */
#define MP_KQ_ERROR 0x2u        /* EV_ERROR */

typedef struct mp_kq_event {
    int filter;                 /* MP_KQ_READ, MP_KQ_WRITE */
    unsigned int flags;         /* MP_KQ_EOF, MP_KQ_ERROR */
    unsigned int fflags;        /* with EV_EOF: the socket's error (XNU's so_error) */
    long long data;             /* bytes readable; with EV_ERROR: the errno */
} mp_kq_event_t;

/* The MP_POLL_* bits one kevent reports, and in *error the error code it
 * carries (0: none; events.c then reads SO_ERROR if MP_POLL_ERR is set).
 *  - EV_ERROR: a change failed (kevent(2)); data is its errno.
 *  - EV_EOF: the read side is shut (read filter: HUP); a non-zero fflags is
 *    the socket's error (XNU filt_soread/filt_sowrite put so_error there).
 *  - a read filter active with no flag and nothing to read: XNU's
 *    "temporary udp error" (so_error set, e.g. ECONNREFUSED from ICMP on a
 *    connected socket), or a zero-length datagram: ERR, with the code left
 *    to SO_ERROR (0 for the datagram). */
unsigned int mp__kq_report(const mp_kq_event_t *e, int *error);

#endif /* MP_OS_RULES_H */
