# Group sets: the binding of mpoint.h's group set (groupset.c).  Arguments
# are parsed into a C array with the GIL; the join and leave loops and the
# receive's wait run with it released.  No Python object per group is made
# on the way into the kernel.
#
# Lifetime contract.  Every method converts all its arguments first -- that
# may run caller code (a member's __repr__ for its error message, a tuple
# subclass's __iter__, a timeout's __float__ or __index__, ...), and any
# Python code lets another thread run -- then takes a busy count
# (_acquire: the closed error once close() has run), and only then reads
# the C pointer, which stays valid until its _release.  The C calls run with
# the count held; the GIL guards the count and the closed flag.  close()
# marks the set closed at once (new calls raise WSAENOTSOCK "the set is
# closed") and tells C (mp_groupset_shutdown), which stops a batch join or
# leave in progress before its next member (that one and the rest are
# reported failed, WSAENOTSOCK "the set was closed"); a receive in progress
# ends after its current wait slice (<= 100 ms, wait.pxi) with WSAENOTSOCK
# "the set was closed".  The memory is freed (every membership left, the
# sockets closed) by whoever drops the last busy count: close() itself when
# no call is in progress, else the call that ends last, so close() returns
# at once and nothing frees memory another thread still uses.  A method
# call holds a reference to the object, so __dealloc__ never meets a busy
# count.  In a forked child a set the parent made is inert: every call but
# close() raises RuntimeError (its sockets and memberships are the
# parent's; a leave here would drop them there), and close() only lets go
# of the child's copies of the descriptors (mp_groupset_forget).
from libc.stdlib cimport calloc, malloc, free
from libc.stdint cimport int64_t, uint64_t

cdef extern from "mpoint.h" nogil:
    ctypedef struct mp_groupset_t:
        pass
    ctypedef struct mp_group_stats_t:
        uint64_t datagrams
        uint64_t bytes
        int64_t joined_ns
        int64_t first_ns
        int64_t last_ns
        uint64_t sequenced
        uint64_t gaps
        uint64_t duplicates
        uint64_t reordered
        uint64_t highest
    ctypedef struct mp_member_t:
        unsigned char family
    int mp_member_parse(int family, const char *group, const char *source, mp_member_t *out)
    int mp_groupset_open(int family, unsigned short port, unsigned int ifindex,
                         unsigned int per_socket, int shared_receiver, mp_groupset_t **out)
    void mp_groupset_shutdown(mp_groupset_t *gs)
    void mp_groupset_close(mp_groupset_t *gs)
    void mp_groupset_forget(mp_groupset_t *gs)
    long mp_groupset_join(mp_groupset_t *gs, const mp_member_t *members, size_t n,
                          int *results)
    long mp_groupset_leave(mp_groupset_t *gs, const mp_member_t *members, size_t n,
                           int *results)
    size_t mp_groupset_size(mp_groupset_t *gs)
    size_t mp_groupset_sockets(mp_groupset_t *gs)
    size_t mp_groupset_list(mp_groupset_t *gs, mp_join_t *reqs, mp_group_stats_t *stats,
                            size_t max)
    int mp_groupset_recv(mp_groupset_t *gs, mp_batch_t *batch, int timeout_ms)


cdef const char *_numeric(object host) except NULL:
    """_host_text, raising where it has no text (a NULL source would read as
    none at all)."""
    cdef const char *text = _host_text(host)
    if text == NULL:
        from mpoint.errors import from_code
        raise from_code("WSAEFAULT", "GroupSet", f"{host!r} is not a numeric address")
    return text


cdef class GroupSetCore:
    """The C group set; mpoint.GroupSet wraps it."""
    cdef mp_groupset_t *gs          # NULL once freed
    cdef readonly int family
    cdef readonly int port
    cdef readonly int busy          # calls holding gs (_acquire .. _release)
    cdef readonly bint closed       # close() was called; gs is freed at busy 0
    cdef unsigned long generation   # _fork_generation when made (events.pxi)

    def __cinit__(self, int family, port, unsigned int ifindex, unsigned int per_socket,
                  bint shared_receiver=False):
        cdef long long p = _clamp(port)
        if p < 1 or p > 65535:
            from mpoint.errors import from_code
            raise from_code("WSAEADDRNOTAVAIL", "GroupSet", f"port {port} is not 1..65535")
        self.family = family
        self.port = <int>p
        if mp_groupset_open(family, <unsigned short>p, ifindex, per_socket, shared_receiver,
                            &self.gs) < 0:
            _raise("GroupSet")
        self.generation = _fork_generation

    def __dealloc__(self):
        if self._foreign():
            mp_groupset_forget(self.gs)
        elif self.busy == 0:            # always: a call in progress holds a reference
            mp_groupset_close(self.gs)

    cdef inline bint _foreign(self):
        """Made by the parent of this (forked) process: its sockets, poller
        and memberships are the parent's too, and its busy count may be held
        by a parent thread that does not exist here."""
        return self.generation != _fork_generation

    @property
    def inherited(self):
        """True in a child process for a set its parent made."""
        return self._foreign()

    def close(self):
        """Marks the set closed and stops the calls in progress (see the
        contract above); leaves every group, newest socket first, and frees
        the set now if none is, else when the last of them returns."""
        cdef mp_groupset_t *gs = self.gs
        if self.closed:
            return
        self.closed = True
        if self._foreign():             # no call can be running here: they all refuse
            self.gs = NULL
            mp_groupset_forget(gs)
            return
        mp_groupset_shutdown(gs)
        if self.busy == 0:
            self.gs = NULL
            with nogil:
                mp_groupset_close(gs)

    cdef int _open(self) except -1:
        if self.closed:
            _fail("WSAENOTSOCK", "GroupSet", "the set is closed")
        if self._foreign():
            raise RuntimeError("GroupSet: this set belongs to the parent process (it was "
                               "inherited by fork); close it here and make a new one")
        return 0

    cdef mp_groupset_t *_acquire(self) except NULL:
        """The C set, held until _release: call it after every argument is
        converted, and release exactly once."""
        self._open()
        self.busy += 1
        return self.gs

    cdef void _release(self) noexcept:
        """Drops a busy count; the last one after close() frees the set."""
        cdef mp_groupset_t *gs = self.gs
        self.busy -= 1
        if self.busy == 0 and self.closed and gs != NULL:
            self.gs = NULL
            with nogil:
                mp_groupset_close(gs)

    cdef mp_member_t *_members(self, list members, list errors, list keys) except NULL:
        """Members (a group, or (group, source)) parsed into a C array; for
        one that cannot be a membership errors[i] gets its exception and its
        entry is left zeroed (the C loop then refuses it as of no family).
        Caller code may run here (reprs, tuple subclasses): never touches gs."""
        cdef Py_ssize_t i, n = len(members)
        cdef const char *g
        cdef const char *src
        cdef mp_member_t *out = <mp_member_t *>calloc(max(1, n), sizeof(mp_member_t))
        if out == NULL:
            raise MemoryError()
        try:
            for i in range(n):
                m = members[i]
                if isinstance(m, str):
                    group, source = m, None
                elif isinstance(m, tuple) and len(<tuple>m) == 2:
                    group, source = m
                    if source is None:
                        m = group                   # (group, None) is spelled group
                else:
                    raise TypeError(f"a member is a group or (group, source), not {m!r}")
                try:
                    g = _numeric(group)
                    src = NULL
                    if source is not None:
                        src = _numeric(source)
                    if mp_member_parse(self.family, g, src, &out[i]) < 0:
                        _raise("GroupSet")
                except OSError as exc:
                    if errors[i] is None:
                        errors[i] = exc
                keys.append(m)
        except BaseException:
            free(out)
            raise
        return out

    def _run(self, list members, bint join):
        """Joins or leaves members -> (keys, codes): keys are the members as
        the set names them; codes is None when every one succeeded, else a
        list of 0 (done), a platform code, or the exception of a member that
        cannot be a membership."""
        self._open()                    # a closed set says so before parsing
        cdef Py_ssize_t n = len(members), i
        cdef list out = [None] * n
        cdef list keys = []
        cdef mp_member_t *reqs = self._members(members, out, keys)
        cdef int *results = <int *>malloc(max(1, n) * sizeof(int))
        cdef mp_groupset_t *gs
        cdef long rc
        cdef int err = 0
        if results == NULL:
            free(reqs)
            raise MemoryError()
        try:
            gs = self._acquire()
            try:
                with nogil:
                    if join:
                        rc = mp_groupset_join(gs, reqs, <size_t>n, results)
                    else:
                        rc = mp_groupset_leave(gs, reqs, <size_t>n, results)
                    err = mp_last_error()
            finally:
                self._release()         # may free the set: err was read first
            if rc < 0:
                _raise_code(err, "GroupSet")
            if rc == n:
                return keys, None
            for i in range(n):
                if out[i] is None:
                    out[i] = results[i]
            return keys, out
        finally:
            free(reqs)
            free(results)

    def join(self, list groups):
        return self._run(groups, True)

    def leave(self, list groups):
        return self._run(groups, False)

    def size(self):
        cdef mp_groupset_t *gs = self._acquire()
        cdef size_t n
        with nogil:                     # a batch in another thread holds the set's lock
            n = mp_groupset_size(gs)
        self._release()
        return n

    def sockets(self):
        cdef mp_groupset_t *gs = self._acquire()
        cdef size_t n
        with nogil:
            n = mp_groupset_sockets(gs)
        self._release()
        return n

    def members(self):
        """[(group, source or None, stats tuple)], oldest membership first.
        stats: (datagrams, bytes, joined_ns, first_ns, last_ns, sequenced,
        gaps, duplicates, reordered)."""
        cdef mp_groupset_t *gs = self._acquire()
        cdef size_t n, i, room
        cdef mp_join_t *reqs = NULL
        cdef mp_group_stats_t *st = NULL
        with nogil:
            n = mp_groupset_size(gs)
            room = n if n > 0 else 1
            reqs = <mp_join_t *>malloc(room * sizeof(mp_join_t))
            st = <mp_group_stats_t *>malloc(room * sizeof(mp_group_stats_t))
            if reqs != NULL and st != NULL:
                n = mp_groupset_list(gs, reqs, st, n)
        self._release()                 # the copies are ours: objects made after
        try:
            if reqs == NULL or st == NULL:
                raise MemoryError()
            return [(_host(&reqs[i].group),
                     _host(&reqs[i].source) if reqs[i].source_len else None,
                     (st[i].datagrams, st[i].bytes, st[i].joined_ns, st[i].first_ns,
                      st[i].last_ns, st[i].sequenced, st[i].gaps, st[i].duplicates,
                      st[i].reordered))
                    for i in range(n)]
        finally:
            free(reqs)
            free(st)

    def recv(self, RecvBatch batch not None, timeout):
        """Receives into batch from every member with data; see recv_batch."""
        cdef _wait_t w
        cdef int ms, n, err
        cdef mp_groupset_t *gs
        cdef mp_batch_t *b = batch.b
        _wait_start(&w, timeout)          # caller code may run (__float__): first
        if not b.metadata:                # the batch's own flag, not a property
            _fail("WSAEINVAL", "GroupSet.recv_batch",
                  "a group set needs a metadata batch: the group comes from it")
        _claim(batch)
        try:
            gs = self._acquire()
        except BaseException:
            batch.busy = False
            raise
        try:
            while True:
                ms = _wait_ms(&w)
                with nogil:
                    n = mp_groupset_recv(gs, b, ms)
                    err = mp_last_error()
                if n <= 0 and self.closed:      # by another thread, or a signal handler
                    _fail("WSAENOTSOCK", "GroupSet.recv_batch", "the set was closed")
                if n < 0:
                    _wait_check(1, err, "GroupSet.recv_batch")
                    n = 0
                if n > 0 or ms == 0:
                    return n
                PyErr_CheckSignals()            # between slices (Windows)
        finally:
            batch.busy = False
            self._release()
