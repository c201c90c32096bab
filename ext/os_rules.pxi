# os_rules.pxi -- test hooks for the per-OS decisions written portably
# (os_rules.h): each OS's rule can be checked from any OS, as data.  Not part
# of the public API (mpoint never calls them).

cdef extern from "os_rules.h" nogil:
    int MP_PORT_RULE_LINUX, MP_PORT_RULE_BSD
    unsigned int MP_SHARE_REUSEADDR, MP_SHARE_REUSEPORT
    unsigned int mp__port_sharing(int rule)

    int MP_KQ_READ, MP_KQ_WRITE, MP_KQ_DELETE, MP_KQ_ADD_LEVEL, MP_KQ_ADD_CLOSE
    unsigned int MP_KQ_EOF, MP_KQ_ERROR
    int MP_KQ_MAX_CHANGES
    ctypedef struct mp_kq_change_t:
        int filter
        int action
    ctypedef struct mp_kq_event_t:
        int filter
        unsigned int flags
        unsigned int fflags
        long long data
    int mp__kq_plan(unsigned int before, unsigned int after, mp_kq_change_t *out)
    unsigned int mp__kq_report(const mp_kq_event_t *e, int *error)

cdef extern from "poller.h" nogil:
    unsigned int MP_POLL_IN, MP_POLL_OUT, MP_POLL_ERR, MP_POLL_HUP

_POLL_BITS = {"in": MP_POLL_IN, "out": MP_POLL_OUT, "err": MP_POLL_ERR, "hup": MP_POLL_HUP}
_KQ_FILTERS = {MP_KQ_READ: "read", MP_KQ_WRITE: "write"}
_KQ_ACTIONS = {MP_KQ_DELETE: "delete", MP_KQ_ADD_LEVEL: "add", MP_KQ_ADD_CLOSE: "add-close-only"}


cdef unsigned int _poll_bits(names) except? 0:
    cdef unsigned int bits = 0
    for name in names:
        bits |= _POLL_BITS[name]
    return bits


def _port_sharing(str rule):
    """The socket options (names) a receiver sets to share a UDP port under
    a stack's rule, "linux" or "bsd" (port_sharing.c)."""
    cdef unsigned int opts = mp__port_sharing(
        {"linux": MP_PORT_RULE_LINUX, "bsd": MP_PORT_RULE_BSD}[rule])
    return frozenset(name for name, bit in (("SO_REUSEADDR", MP_SHARE_REUSEADDR),
                                            ("SO_REUSEPORT", MP_SHARE_REUSEPORT))
                     if opts & bit)


def _kqueue_plan(before, after):
    """The kqueue changes (filter, action), in order, from one watch (a set
    of "in", "out", "hup") to another (kqueue_rules.c)."""
    cdef mp_kq_change_t out[3]
    cdef int n = mp__kq_plan(_poll_bits(before), _poll_bits(after), out)
    return [(_KQ_FILTERS[out[i].filter], _KQ_ACTIONS[out[i].action]) for i in range(n)]


def _kqueue_report(str filter, bint eof=False, bint ev_error=False, unsigned int fflags=0,
                   long long data=0):
    """What one kevent reports: (set of "in", "out", "err", "hup", error code)."""
    cdef mp_kq_event_t e
    cdef int error = 0
    cdef unsigned int what
    e.filter = MP_KQ_READ if filter == "read" else MP_KQ_WRITE
    e.flags = (MP_KQ_EOF if eof else 0) | (MP_KQ_ERROR if ev_error else 0)
    e.fflags = fflags
    e.data = data
    what = mp__kq_report(&e, &error)
    return frozenset(name for name, bit in _POLL_BITS.items() if what & bit), error
