# Declarations of the portable C core (mpoint.h), only the fields used.
cdef extern from "mpoint.h" nogil:
    ctypedef long long mp_sock_t      # int on POSIX, SOCKET on Windows
    ctypedef int mp_socklen_t
    cdef struct sockaddr_storage:
        pass

    int MP_JL_SENDER_ONLY, MP_JL_RECEIVER_ONLY, MP_JL_BOTH
    int MP_WSA_FLAG_OVERLAPPED, MP_WSA_FLAG_NO_HANDLE_INHERIT
    int MP_WSA_FLAG_MULTIPOINT_C_ROOT, MP_WSA_FLAG_MULTIPOINT_C_LEAF
    int MP_WSA_FLAG_MULTIPOINT_D_ROOT, MP_WSA_FLAG_MULTIPOINT_D_LEAF
    int MP_JOINED_BY_OPTION, MP_JOINED_NATIVE, MP_JOINED_PLAIN, MP_SOCKET_PLAIN
    int MP_SET_BY_OPTION, MP_SET_BY_IOCTL
    mp_sock_t MP_INVALID_SOCKET

    ctypedef struct mp_join_t:
        sockaddr_storage group
        mp_socklen_t group_len
        sockaddr_storage source
        mp_socklen_t source_len
        unsigned int ifindex
        unsigned int flags
        size_t caller_len
        int has_sqos
        int has_gqos
        const char *if_text
        long long if_index
        int if_given
        int bound
        int plain

    int mp_socket_check(int family, int type, int proto, unsigned long flags)
    int mp_socket_setup_suffices()
    int mp_socket_setup(mp_sock_t s, int family)
    int mp_socket_open(int family, int type, int proto, unsigned long flags,
                       mp_sock_t *out)
    int mp_parse_address(int family, const char *host, long long port,
                         unsigned long flowinfo, unsigned long scope_id,
                         sockaddr_storage *out, mp_socklen_t *out_len)
    int mp_interface_by_index(long long ifindex, unsigned int *out)
    int mp_interface_by_string(const char *name_or_address, unsigned int *out)
    int mp_join_leaf(mp_sock_t s, int family, const mp_join_t *req)
    int mp_join_leaf_deferred(mp_sock_t s, int family, const mp_join_t *req, int *result)
    int mp_get_loopback(mp_sock_t s, int family, int *on)
    int mp_set_loopback(mp_sock_t s, int family, int on)
    int mp_get_scope(mp_sock_t s, int family, int *hops)
    int mp_set_scope(mp_sock_t s, int family, long long hops)
    int mp_last_error()
    int mp_error_is_interrupt(int code)
    int mp_error_is_would_block(int code)

    # The send path's token bucket (mpoint.h, shaper.c); only the fields read.
    ctypedef struct mp_shaper_t:
        unsigned long long token_rate
        unsigned long long bucket
        unsigned long long peak
        unsigned long long min_policed
        unsigned long long max_sdu
        unsigned long long tokens
        unsigned long long peak_tokens
        unsigned long long last_ns
