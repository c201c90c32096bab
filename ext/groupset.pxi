# Group sets: the binding of mpoint.h's group set (groupset.c).  Arguments
# are parsed into a C array with the GIL; the join and leave loops and the
# receive's wait run with it released.  No Python object per group is made
# on the way into the kernel.
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
    void mp_groupset_close(mp_groupset_t *gs)
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
    cdef mp_groupset_t *gs
    cdef readonly int family
    cdef readonly int port
    cdef int receiving              # recv calls in progress (their waits hold gs)

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

    def __dealloc__(self):
        mp_groupset_close(self.gs)

    def close(self):
        """Leaves every group, newest socket first, and frees the set."""
        if self.receiving:
            raise RuntimeError("GroupSet.close() while another thread receives from it")
        cdef mp_groupset_t *gs = self.gs
        self.gs = NULL
        with nogil:
            mp_groupset_close(gs)

    cdef int _live(self) except -1:
        if self.gs == NULL:
            from mpoint.errors import from_code
            raise from_code("WSAENOTSOCK", "GroupSet", "the set is closed")
        return 0

    cdef mp_member_t *_members(self, list members, list errors, list keys) except NULL:
        """Members (a group, or (group, source)) parsed into a C array; for
        one that cannot be a membership errors[i] gets its exception and its
        entry is left zeroed (the C loop then refuses it as of no family)."""
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
        self._live()
        cdef Py_ssize_t n = len(members), i
        cdef list out = [None] * n
        cdef list keys = []
        cdef mp_member_t *reqs = self._members(members, out, keys)
        cdef int *results = <int *>malloc(max(1, n) * sizeof(int))
        cdef mp_groupset_t *gs = self.gs
        cdef long rc
        if results == NULL:
            free(reqs)
            raise MemoryError()
        try:
            with nogil:
                if join:
                    rc = mp_groupset_join(gs, reqs, <size_t>n, results)
                else:
                    rc = mp_groupset_leave(gs, reqs, <size_t>n, results)
            if rc < 0:
                _raise("GroupSet")
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
        self._live()
        return mp_groupset_size(self.gs)

    def sockets(self):
        self._live()
        return mp_groupset_sockets(self.gs)

    def members(self):
        """[(group, source or None, stats tuple)], oldest membership first.
        stats: (datagrams, bytes, joined_ns, first_ns, last_ns, sequenced,
        gaps, duplicates, reordered)."""
        self._live()
        cdef size_t n = mp_groupset_size(self.gs), i
        cdef size_t room = n if n > 0 else 1
        cdef mp_join_t *reqs = <mp_join_t *>malloc(room * sizeof(mp_join_t))
        cdef mp_group_stats_t *st = <mp_group_stats_t *>malloc(room * sizeof(mp_group_stats_t))
        try:
            if reqs == NULL or st == NULL:
                raise MemoryError()
            n = mp_groupset_list(self.gs, reqs, st, n)
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
        cdef int ms, n
        cdef mp_groupset_t *gs
        cdef mp_batch_t *b = batch.b
        _wait_start(&w, timeout)          # caller code may run (__float__): first
        self._live()
        gs = self.gs
        if not batch.metadata:
            from mpoint.errors import from_code
            raise from_code("WSAEINVAL", "GroupSet.recv_batch",
                            "a group set needs a metadata batch: the group comes from it")
        if batch.busy:
            raise RuntimeError("another receive into this batch is running")
        batch.busy = True
        self.receiving += 1
        try:
            while True:
                ms = _wait_ms(&w)
                with nogil:
                    n = mp_groupset_recv(gs, b, ms)
                if n < 0:
                    _wait_check(1, mp_last_error(), "GroupSet.recv_batch")
                    n = 0
                if n > 0 or ms == 0:
                    return n
                PyErr_CheckSignals()            # between slices (Windows)
        finally:
            self.receiving -= 1
            batch.busy = False
