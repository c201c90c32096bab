/* common.c -- argument validation shared by every platform.
 *
 * Each public mp_* function checks its arguments here, once, in the order
 * WSAJoinLeaf's error table suggests, and only then calls the platform file
 * (mp__*).  Codes are Winsock's; mp__set_wsa_error stores the platform's
 * equivalent so the caller sees one error path whatever failed.
 */
#include <string.h>
#include <limits.h>

#include "batch_platform.h"
#include "mp_platform.h"

int mp__fail(int wsa_code)
{
    mp__set_wsa_error(wsa_code);
    return -1;
}

int mp_last_error(void)
{
    return mp__last_error();
}

/* ---- sockets ----------------------------------------------------------- */

#define MP_CONTROL_FLAGS (MP_WSA_FLAG_MULTIPOINT_C_ROOT | MP_WSA_FLAG_MULTIPOINT_C_LEAF)
#define MP_DATA_FLAGS    (MP_WSA_FLAG_MULTIPOINT_D_ROOT | MP_WSA_FLAG_MULTIPOINT_D_LEAF)
#define MP_KNOWN_FLAGS   (MP_CONTROL_FLAGS | MP_DATA_FLAGS | MP_WSA_FLAG_OVERLAPPED | \
                          MP_WSA_FLAG_NO_HANDLE_INHERIT)

static int exactly_one(unsigned long bits)
{
    return bits != 0 && (bits & (bits - 1)) == 0;
}

int mp_socket_check(int family, int type, int proto, unsigned long flags)
{
    if (family != AF_INET && family != AF_INET6)
        return mp__fail(MP_WSAEAFNOSUPPORT);
    if (type != SOCK_DGRAM)
        return mp__fail(MP_WSAESOCKTNOSUPPORT);
    if (proto != 0 && proto != IPPROTO_UDP)
        return mp__fail(MP_WSAEPROTONOSUPPORT);
    /* WSASocket: a multipoint socket names its control and data plane roles. */
    if ((flags & ~(unsigned long)MP_KNOWN_FLAGS) != 0 ||
        !exactly_one(flags & MP_CONTROL_FLAGS) || !exactly_one(flags & MP_DATA_FLAGS))
        return mp__fail(MP_WSAEINVAL);
    /* Rooted planes need a root that admits leaves (listen/accept); IP
     * multicast is non-rooted on both planes. */
    if (flags & (MP_WSA_FLAG_MULTIPOINT_C_ROOT | MP_WSA_FLAG_MULTIPOINT_D_ROOT))
        return mp__fail(MP_WSAEOPNOTSUPP);
    return 0;
}

int mp_socket_open(int family, int type, int proto, unsigned long flags,
                   mp_sock_t *out)
{
    if (mp_socket_check(family, type, proto, flags) < 0)
        return -1;
    return mp__socket_open(family, out);
}

int mp_socket_setup_suffices(void)
{
    return mp__socket_setup_suffices();
}

int mp_socket_setup(mp_sock_t s, int family)
{
    if (s == MP_INVALID_SOCKET)
        return mp__fail(MP_WSAENOTSOCK);
    if (family != AF_INET && family != AF_INET6)
        return mp__fail(MP_WSAEAFNOSUPPORT);
    return mp__socket_setup(s, family);
}

/* ---- addresses --------------------------------------------------------- */

int mp_parse_address(int family, const char *host, long long port,
                     unsigned long flowinfo, unsigned long scope_id,
                     struct sockaddr_storage *out, mp_socklen_t *out_len)
{
    unsigned char probe[sizeof(struct in6_addr)];
    int other = family == AF_INET ? AF_INET6 : AF_INET;

    if (family != AF_INET && family != AF_INET6)
        return mp__fail(MP_WSAEAFNOSUPPORT);
    if (host == NULL || port < 0 || port > 65535)
        return mp__fail(MP_WSAEFAULT);
    memset(out, 0, sizeof(*out));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        if (flowinfo != 0 || scope_id != 0)
            return mp__fail(MP_WSAEFAULT);
        if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
            sin->sin_port = htons((unsigned short)port);
            *out_len = (mp_socklen_t)sizeof(*sin);
            MP_SET_SA_LEN(out, *out_len);
            return 0;
        }
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        if (flowinfo > 0xfffffUL || scope_id > 0xffffffffUL)
            return mp__fail(MP_WSAEFAULT);
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((unsigned short)port);
            sin6->sin6_flowinfo = htonl((unsigned int)flowinfo);
            sin6->sin6_scope_id = (unsigned int)scope_id;
            *out_len = (mp_socklen_t)sizeof(*sin6);
            MP_SET_SA_LEN(out, *out_len);
            return 0;
        }
    }
    if (inet_pton(other, host, probe) == 1)
        return mp__fail(MP_WSAEAFNOSUPPORT);
    return mp__fail(MP_WSAEFAULT);
}

/* A numeric address of either family, without touching the error code. */
static int parse_any(const char *host, struct sockaddr_storage *out, mp_socklen_t *out_len)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)out)->sin_addr) == 1) {
        out->ss_family = AF_INET;
        *out_len = (mp_socklen_t)sizeof(struct sockaddr_in);
        MP_SET_SA_LEN(out, *out_len);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)out)->sin6_addr) == 1) {
        out->ss_family = AF_INET6;
        *out_len = (mp_socklen_t)sizeof(struct sockaddr_in6);
        MP_SET_SA_LEN(out, *out_len);
        return 0;
    }
    return -1;
}

static int is_multicast(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        unsigned long a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return (a >> 28) == 0xe;
    }
    return ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr[0] == 0xff;
}

static int is_unspecified(const struct sockaddr *sa)
{
    static const unsigned char zero[16];
    if (sa->sa_family == AF_INET)
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == 0;
    return memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, zero, 16) == 0;
}

static unsigned short port_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* ---- interfaces -------------------------------------------------------- */

static int index_on(mp_sock_t s, long long ifindex, unsigned int *out)
{
    if (ifindex <= 0 || ifindex > (long long)UINT_MAX ||
        !mp__interface_exists(s, (unsigned int)ifindex))
        return mp__fail(MP_WSAEADDRNOTAVAIL);
    *out = (unsigned int)ifindex;
    return 0;
}

static int string_on(mp_sock_t s, const char *name_or_address, unsigned int *out)
{
    struct sockaddr_storage ss;
    struct sockaddr *sa = (struct sockaddr *)&ss;
    mp_socklen_t len;
    int found;

    if (name_or_address == NULL || name_or_address[0] == '\0' ||
        strlen(name_or_address) >= 256)
        return mp__fail(MP_WSAEADDRNOTAVAIL);
    if (parse_any(name_or_address, &ss, &len) == 0) {
        if (is_multicast(sa) || is_unspecified(sa))
            return mp__fail(MP_WSAEADDRNOTAVAIL);
        found = mp__interface_by_address(sa, out);
    } else {
        found = mp__interface_by_name(s, name_or_address, out);
    }
    if (found < 0 || *out == 0)
        return mp__fail(MP_WSAEADDRNOTAVAIL);
    return 0;
}

int mp_interface_by_index(long long ifindex, unsigned int *out)
{
    return index_on(MP_INVALID_SOCKET, ifindex, out);
}

int mp_interface_by_string(const char *name_or_address, unsigned int *out)
{
    return string_on(MP_INVALID_SOCKET, name_or_address, out);
}

/* ---- joining ----------------------------------------------------------- */

static int check_join(mp_sock_t s, int family, const mp_join_t *req)
{
    if (s == MP_INVALID_SOCKET)
        return mp__fail(MP_WSAENOTSOCK);
    return mp_join_check(family, req);
}

int mp_join_check(int family, const mp_join_t *req)
{
    const struct sockaddr *group = (const struct sockaddr *)&req->group;
    const struct sockaddr *source = (const struct sockaddr *)&req->source;
    mp_socklen_t need = family == AF_INET ? (mp_socklen_t)sizeof(struct sockaddr_in)
                                          : (mp_socklen_t)sizeof(struct sockaddr_in6);

    if (req->flags != MP_JL_SENDER_ONLY && req->flags != MP_JL_RECEIVER_ONLY &&
        req->flags != MP_JL_BOTH)
        return mp__fail(MP_WSAEINVAL);
    /* name/namelen: WSAEFAULT if too small, WSAEAFNOSUPPORT if of another
     * family, WSAEADDRNOTAVAIL if not a session this host can join. */
    if (req->group_len < need)
        return mp__fail(MP_WSAEFAULT);
    if (group->sa_family != family)
        return mp__fail(MP_WSAEAFNOSUPPORT);
    if (!is_multicast(group) || port_of(group) == 0)
        return mp__fail(MP_WSAEADDRNOTAVAIL);
    /* IP carries no connect data: lpCallerData is "not supported by the
     * service provider" (WSAEPROTONOSUPPORT); an empty buffer is no data. */
    if (req->caller_len != 0)
        return mp__fail(MP_WSAEPROTONOSUPPORT);
    /* lpSQOS / lpGQOS: applied by the caller before the join (the plan in
     * mpoint/qos_plan.py, then mp_qos_apply and the shaper), so that a
     * request that cannot be honoured fails before the membership exists. */
    if (req->source_len != 0) {
        if (req->flags == MP_JL_SENDER_ONLY)
            return mp__fail(MP_WSAEINVAL);   /* a source filter needs a membership */
        if (req->source_len < need)
            return mp__fail(MP_WSAEFAULT);
        if (source->sa_family != family)
            return mp__fail(MP_WSAEAFNOSUPPORT);
        if (is_multicast(source) || is_unspecified(source))
            return mp__fail(MP_WSAEADDRNOTAVAIL);
    }
    return 0;
}

/* A receiver asks for its metadata (mp_enable_metadata) before its
 * membership exists, so that no datagram of the group is queued without an
 * arriving interface or a kernel timestamp: options turned on later leave
 * the datagrams already queued without them. */
static int join_now(mp_sock_t s, int family, const mp_join_t *req)
{
    if (req->flags != MP_JL_SENDER_ONLY && mp__batch_enable_metadata(s, family) < 0)
        return -1;
    return mp__join_leaf(s, family, req);
}

/* The checks, then the interface the caller named (if_text or if_index)
 * into r->ifindex, asking the socket itself where the platform can. */
static int prepare_join(mp_sock_t s, int family, const mp_join_t *req, mp_join_t *r)
{
    if (check_join(s, family, req) < 0)
        return -1;
    *r = *req;
    if (req->if_text != NULL)
        return string_on(s, req->if_text, &r->ifindex);
    if (req->if_given)
        return index_on(s, req->if_index, &r->ifindex);
    return 0;
}

int mp_join_leaf(mp_sock_t s, int family, const mp_join_t *req)
{
    mp_join_t r;

    if (prepare_join(s, family, req, &r) < 0)
        return -1;
    return join_now(s, family, &r);
}

int mp_join_leaf_deferred(mp_sock_t s, int family, const mp_join_t *req, int *result)
{
    mp_join_t r;
    int how;

    if (prepare_join(s, family, req, &r) < 0)
        return -1;
    how = join_now(s, family, &r);
    *result = how < 0 ? mp__last_error() : 0;
    return how < 0 ? MP_JOINED_BY_OPTION : how;
}

/* ---- loopback and scope ------------------------------------------------ */

static int check_socket(mp_sock_t s, int family)
{
    if (s == MP_INVALID_SOCKET)
        return mp__fail(MP_WSAENOTSOCK);
    if (family != AF_INET && family != AF_INET6)
        return mp__fail(MP_WSAEAFNOSUPPORT);
    return 0;
}

int mp_get_loopback(mp_sock_t s, int family, int *on)
{
    if (check_socket(s, family) < 0)
        return -1;
    return mp__get_int_option(s, family, MP_OPT_LOOPBACK, on);
}

int mp_set_loopback(mp_sock_t s, int family, int on)
{
    if (check_socket(s, family) < 0)
        return -1;
    return mp__set_int_option(s, family, MP_OPT_LOOPBACK, on != 0);
}

int mp_get_scope(mp_sock_t s, int family, int *hops)
{
    if (check_socket(s, family) < 0)
        return -1;
    return mp__get_int_option(s, family, MP_OPT_SCOPE, hops);
}

int mp_set_scope(mp_sock_t s, int family, long long hops)
{
    if (check_socket(s, family) < 0)
        return -1;
    if (hops < 0 || hops > 255)
        return mp__fail(MP_WSAEINVAL);
    return mp__set_int_option(s, family, MP_OPT_SCOPE, (int)hops);
}

/* ---- decisions of the Windows files (mp_platform.h) --------------------- */

int mp__native_join_verdict(int wsa_code)
{
    if (wsa_code == 0)
        return MP_JOINED_BY_OPTION;
    return wsa_code == MP_WSAEWOULDBLOCK ? MP_JOINED_NATIVE : -1;
}

int mp__plain_socket_fallback(int wsa_code)
{
    return wsa_code == MP_WSAESOCKTNOSUPPORT;
}

int mp__empty_wait_ms(int timeout_ms)
{
    return timeout_ms < 0 || timeout_ms > MP_EMPTY_WAIT_SLICE_MS ? MP_EMPTY_WAIT_SLICE_MS
                                                                  : timeout_ms;
}

int mp__same_address(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a == NULL || a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr,
                  sizeof(struct in6_addr)) == 0;
}
