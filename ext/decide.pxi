# The decisions of the Windows files, kept in portable C (common.c,
# events.c) so that every platform's suite tests them; the system calls
# that act on them stay in ext/win.  For tests only (tests/test_win_decisions.py):
# codes are Winsock's numbers.

cdef extern from "mp_platform.h":
    int mp__native_join_verdict(int wsa_code)
    int mp__plain_socket_fallback(int wsa_code)
    int mp__empty_wait_ms(int timeout_ms)

cdef extern from "poller.h":
    ctypedef struct mp_ready_t:
        unsigned int slot
        unsigned int what
        int error
        int codes[3]
        int has_codes
    int mp__ready_error(const mp_ready_t *r, unsigned int fd_event, int so_error, int *out)


def _native_join_verdict(int wsa_code):
    """WSAJoinLeaf failed with wsa_code (0: none) -> MP_JOINED_* or -1."""
    return mp__native_join_verdict(wsa_code)


def _plain_socket_fallback(int wsa_code):
    """WSASocket failed with wsa_code -> whether a plain socket serves."""
    return bool(mp__plain_socket_fallback(wsa_code))


def _empty_wait_ms(int timeout_ms):
    """A poller with nothing to watch, asked to wait timeout_ms -> its sleep."""
    return mp__empty_wait_ms(timeout_ms)


def _ready_error(unsigned int what, codes, unsigned int fd_event, int so_error,
                 int error=0):
    """The code events.c reports for fd_event of a ready record (what:
    MP_POLL_* bits; codes: the poller's (in, out, hup) or None; error: the
    one code a poller read with the event, as kqueue's EV_EOF fflags) ->
    (code, whether the socket's SO_ERROR was asked for)."""
    cdef mp_ready_t r
    cdef int out = 0, ask
    memset(&r, 0, sizeof(r))
    r.what = what
    r.error = error
    if codes is not None:
        r.codes[0], r.codes[1], r.codes[2] = codes
        r.has_codes = 1
    ask = mp__ready_error(&r, fd_event, -1, &out)
    if ask > 0:
        mp__ready_error(&r, fd_event, so_error, &out)
    return out, ask > 0


JOINED_BY_OPTION = MP_JOINED_BY_OPTION
JOINED_NATIVE = MP_JOINED_NATIVE
JOINED_PLAIN = MP_JOINED_PLAIN
SET_BY_OPTION = MP_SET_BY_OPTION
SET_BY_IOCTL = MP_SET_BY_IOCTL
