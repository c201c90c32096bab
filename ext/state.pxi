# SocketState: the one owner of a MultipointSocket's multipoint state
# (MultipointSocket._mp); the facade reads it through properties, and only
# the core writes it.
cdef extern from "mpoint.h":
    int MP_BOUND_ASK, MP_BOUND_NO, MP_BOUND_YES

BOUND_ASK = MP_BOUND_ASK


cdef class SocketState:
    """What makes a socket multipoint, owned in one place: its WSASocket
    flags and family, the session it joined (name, JL_* role, how), the
    destination of send(), whether metadata is on, its EventSet registration
    and what is known of its local address."""
    cdef readonly int family
    cdef readonly unsigned long flags
    cdef readonly object joined          # the name joined, or None
    cdef readonly unsigned int join_flags    # JL_* role; 0: not joined
    cdef readonly int join_method        # MP_JOINED_*; -1: not joined
    cdef readonly bint plain             # made without multipoint (MP_SOCKET_PLAIN)
    cdef readonly int option_method        # MP_SET_BY_* of the last loopback/scope set; -1: none
    cdef readonly object dest            # send()'s destination (JL_BOTH), or None
    cdef readonly bint metadata          # pktinfo and timestamps asked for
    cdef public object reg               # (EventSet, slot), or None
    # QoS (ext/qos.pxi, mpoint/qos_plan.py): the QOS applied (mpoint.QOS, or
    # None) with its plan, and the Windows qWAVE flow the socket is in (0: none).
    cdef public object qos
    cdef public object qos_plan
    cdef unsigned int qos_flow
    cdef int bound                       # MP_BOUND_*
    # A blocking C call on the descriptor holds the state busy; closing the
    # socket meanwhile marks it closing and hands the descriptor here
    # (deferred_fd), and the last busy call to leave closes it: the number
    # is never reused while a call still waits on it (ext/sockcalls.pxi).
    cdef int busy
    cdef readonly bint closing
    cdef long long deferred_fd
    # The send path's token bucket (ext/sendcalls.pxi), in use when shaped.
    cdef mp_shaper_t shaper
    cdef readonly bint shaped

    def __cinit__(self, int family, unsigned long flags, int bound, bint plain=False):
        self.family = family
        self.flags = flags
        self.plain = plain
        self.join_method = -1
        self.option_method = -1
        self.bound = bound
        self.deferred_fd = -1

    cdef void joined_as(self, object name, unsigned int flags, int how):
        """The bookkeeping after a successful join, once for every path."""
        self.joined = name
        self.join_flags = flags
        self.join_method = how
        if flags != MP_JL_SENDER_ONLY:
            self.metadata = True         # mp_join_leaf asked before the membership
            self.bound = MP_BOUND_YES
        if flags == MP_JL_BOTH:
            self.dest = name
