/* join.c -- WSAJoinLeaf on Windows, for a non-rooted IP multicast socket.
 *
 * The spec's steps, in the order of posix/join.c: bind an unbound socket;
 * for receivers add the membership; for senders choose the outgoing
 * interface and, for JL_SENDER_ONLY, make the group the default destination
 * with connect().  Arguments were validated in common.c.
 *
 * Two ways to join.  The native WSAJoinLeaf joins on the default interface
 * and takes no source filter, so it is used only for a join with neither an
 * interface nor a source; everything else is made with socket options, as on
 * POSIX.  mp__join_leaf says which way it went: MP_JOINED_NATIVE,
 * MP_JOINED_BY_OPTION, or MP_JOINED_PLAIN for a plain socket (mpoint.h;
 * Python's sock.join_method).
 */
#include <string.h>

#include "win.h"

/* Per family (0: IPv4, 1: IPv6): set once a provider answered
 * WSAENOPROTOOPT to the protocol-independent group requests (RFC 3678
 * MCAST_JOIN_GROUP, Windows Vista and later; Wine 8 has none), so later
 * memberships go straight to the per-family options. */
static volatile LONG no_group_requests[2];

/* ---- binding ------------------------------------------------------------ */

int mp__bind_port(mp_sock_t s, int family, unsigned short port)
{
    struct sockaddr_storage ss;
    int len = family == AF_INET ? (int)sizeof(struct sockaddr_in) : (int)sizeof(struct sockaddr_in6);

    memset(&ss, 0, sizeof(ss));
    ss.ss_family = (ADDRESS_FAMILY)family;
    if (family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
    return bind(s, (struct sockaddr *)&ss, len) == SOCKET_ERROR ? -1 : 0;
}

/* "If the socket is unbound, unique values are assigned to the local
 * association by the system": receivers take the group's port so that its
 * datagrams reach them, senders any free port.  getsockname fails with
 * WSAEINVAL exactly when the socket is not bound. */
static int bind_if_unbound(SOCKET s, int family, const mp_join_t *req)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    unsigned short port = 0;

    /* req->bound: what the caller knows.  Windows refuses a bind to a
     * multicast address, so receivers take the wildcard address. */
    if (req->bound == MP_BOUND_YES)
        return 0;
    if (req->bound == MP_BOUND_ASK) {
        if (getsockname(s, (struct sockaddr *)&ss, &len) == 0)
            return 0;
        if (WSAGetLastError() != WSAEINVAL)
            return -1;
    }
    if (req->flags != MP_JL_SENDER_ONLY)
        port = ntohs(family == AF_INET ? ((const struct sockaddr_in *)&req->group)->sin_port
                                       : ((const struct sockaddr_in6 *)&req->group)->sin6_port);
    if (mp__bind_port(s, family, port) == 0)
        return 0;
    /* Believed unbound, but bound behind mpoint's back: bind says WSAEINVAL. */
    return req->bound == MP_BOUND_NO && WSAGetLastError() == WSAEINVAL ? 0 : -1;
}

/* ---- interfaces of the IPv4 options --------------------------------------
 *
 * The IPv4 options name an interface by an in_addr: a local address, or
 * (ip_mreq, IP_MULTICAST_IF) the index itself as 0.0.0.idx in network
 * order -- "any IP address in the 0.x.x.x block (first octet of 0) except
 * IPv4 address 0.0.0.0 is treated as an interface index" (24 bits).  The
 * index form comes first; a provider that rejects it with WSAEINVAL (Wine
 * passes the address to Linux as is) is asked again with the interface's
 * own IPv4 address. */
static int ipv4_interface(unsigned int ifindex, int by_address, struct in_addr *out)
{
    if (ifindex == 0) {
        out->s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (!by_address && ifindex < 0x1000000u) {
        out->s_addr = htonl(ifindex);
        return 0;
    }
    return mp__win_interface_ipv4(ifindex, out);
}

/* Whether an IPv4 option that failed with the index form of ifindex is worth
 * a second try by address. */
static int retry_by_address(unsigned int ifindex, int attempt)
{
    return attempt == 0 && ifindex != 0 && WSAGetLastError() == WSAEINVAL;
}

/* ---- memberships -------------------------------------------------------- */

/* MCAST_{JOIN,LEAVE}_GROUP, or the _SOURCE_GROUP forms: one interface
 * index for both families. */
static int group_request(SOCKET s, int family, const mp_join_t *req, int join)
{
    int level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6, rc;

    if (req->source_len == 0) {
        GROUP_REQ gr;
        memset(&gr, 0, sizeof(gr));
        gr.gr_interface = req->ifindex;
        memcpy(&gr.gr_group, &req->group, (size_t)req->group_len);
        rc = setsockopt(s, level, join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP,
                        (const char *)&gr, sizeof(gr));
    } else {
        GROUP_SOURCE_REQ gsr;
        memset(&gsr, 0, sizeof(gsr));
        gsr.gsr_interface = req->ifindex;
        memcpy(&gsr.gsr_group, &req->group, (size_t)req->group_len);
        memcpy(&gsr.gsr_source, &req->source, (size_t)req->source_len);
        rc = setsockopt(s, level, join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP,
                        (const char *)&gsr, sizeof(gsr));
    }
    return rc == SOCKET_ERROR ? -1 : 0;
}

/* IP_{ADD,DROP}_MEMBERSHIP and IP_{ADD,DROP}_SOURCE_MEMBERSHIP. */
static int ipv4_membership(SOCKET s, const mp_join_t *req, int join)
{
    struct in_addr group = ((const struct sockaddr_in *)&req->group)->sin_addr;
    int attempt, rc = SOCKET_ERROR;

    for (attempt = 0; attempt < 2; attempt++) {
        struct in_addr ifaddr;
        if (ipv4_interface(req->ifindex, attempt, &ifaddr) < 0)
            return -1;
        if (req->source_len == 0) {
            struct ip_mreq m;
            memset(&m, 0, sizeof(m));
            m.imr_multiaddr = group;
            m.imr_interface = ifaddr;
            rc = setsockopt(s, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
                            (const char *)&m, sizeof(m));
        } else {
            struct ip_mreq_source m;
            memset(&m, 0, sizeof(m));
            m.imr_multiaddr = group;
            m.imr_sourceaddr = ((const struct sockaddr_in *)&req->source)->sin_addr;
            m.imr_interface = ifaddr;
            rc = setsockopt(s, IPPROTO_IP,
                            join ? IP_ADD_SOURCE_MEMBERSHIP : IP_DROP_SOURCE_MEMBERSHIP,
                            (const char *)&m, sizeof(m));
        }
        if (rc != SOCKET_ERROR || !retry_by_address(req->ifindex, attempt))
            break;
    }
    return rc == SOCKET_ERROR ? -1 : 0;
}

/* IPV6_{ADD,DROP}_MEMBERSHIP.  IPv6 has no per-family source-specific
 * option on Windows: without group requests a source-specific IPv6 join is
 * WSAENOPROTOOPT, the code the provider gave for MCAST_JOIN_SOURCE_GROUP. */
static int ipv6_membership(SOCKET s, const mp_join_t *req, int join)
{
    struct ipv6_mreq m;

    if (req->source_len != 0) {
        WSASetLastError(WSAENOPROTOOPT);
        return -1;
    }
    memset(&m, 0, sizeof(m));
    m.ipv6mr_multiaddr = ((const struct sockaddr_in6 *)&req->group)->sin6_addr;
    m.ipv6mr_interface = req->ifindex;
    return setsockopt(s, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP,
                      (const char *)&m, sizeof(m)) == SOCKET_ERROR ? -1 : 0;
}

static int membership(SOCKET s, int family, const mp_join_t *req, int join)
{
    volatile LONG *none = &no_group_requests[family == AF_INET ? 0 : 1];

    if (!*none) {
        if (group_request(s, family, req, join) == 0)
            return 0;
        if (WSAGetLastError() != WSAENOPROTOOPT)
            return -1;
        InterlockedExchange(none, 1);
    }
    return family == AF_INET ? ipv4_membership(s, req, join) : ipv6_membership(s, req, join);
}

int mp__add_membership(mp_sock_t s, int family, const mp_join_t *req)
{
    return membership(s, family, req, 1);
}

int mp__drop_membership(mp_sock_t s, int family, const mp_join_t *req)
{
    return membership(s, family, req, 0);
}

/* ---- sending ------------------------------------------------------------ */

/* IP_MULTICAST_IF takes an in_addr (index form first, as above);
 * IPV6_MULTICAST_IF a DWORD index. */
static int send_interface(SOCKET s, int family, unsigned int ifindex)
{
    DWORD index = ifindex;
    int attempt, rc = SOCKET_ERROR;

    if (family == AF_INET6)
        return setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_IF, (const char *)&index,
                          sizeof(index)) == SOCKET_ERROR ? -1 : 0;
    for (attempt = 0; attempt < 2; attempt++) {
        struct in_addr ifaddr;
        if (ipv4_interface(ifindex, attempt, &ifaddr) < 0)
            return -1;
        rc = setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, (const char *)&ifaddr, sizeof(ifaddr));
        if (rc != SOCKET_ERROR || !retry_by_address(ifindex, attempt))
            break;
    }
    return rc == SOCKET_ERROR ? -1 : 0;
}

/* connect() on a datagram socket only sets the default destination and may
 * be repeated, so it is harmless after a provider that did the same. */
static int connect_to_group(SOCKET s, int family, const mp_join_t *req)
{
    struct sockaddr_storage dest = req->group;

    /* A link-scoped IPv6 group needs a zone: the chosen interface. */
    if (family == AF_INET6 && req->ifindex != 0 &&
        ((struct sockaddr_in6 *)&dest)->sin6_scope_id == 0)
        ((struct sockaddr_in6 *)&dest)->sin6_scope_id = req->ifindex;
    return connect(s, (struct sockaddr *)&dest, req->group_len) == SOCKET_ERROR ? -1 : 0;
}

/* ---- WSAJoinLeaf -------------------------------------------------------- */

/* The native call, on a c_leaf socket: it returns s itself, or
 * INVALID_SOCKET.  MP_JOINED_NATIVE joined -- or, on a non-blocking socket
 * (WSAEventSelect makes every registered socket one), answered
 * WSAEWOULDBLOCK -- spec: "the socket is marked as nonblocking and the
 * multipoint session join operation cannot be completed immediately" --
 * so the join is in progress and "an FD_CONNECT indication will be given
 * when the join operation completes", which mpoint posts itself (mp_join_leaf_deferred) as for any
 * join on a registered socket; -1 failed with the provider's code;
 * MP_JOINED_BY_OPTION the provider returned INVALID_SOCKET without setting
 * any code -- a stub (Wine 8 is one) that did nothing, so the socket
 * options do the join.  mp__native_join_verdict (common.c) decides.  No
 * data, no QoS: common.c refused them. */
static int native_join(SOCKET s, int family, const mp_join_t *req)
{
    int verdict;

    WSASetLastError(0);
    if (WSAJoinLeaf(s, (const struct sockaddr *)&req->group, req->group_len,
                    NULL, NULL, NULL, NULL, req->flags) == INVALID_SOCKET) {
        verdict = mp__native_join_verdict(WSAGetLastError());
        if (verdict != MP_JOINED_NATIVE)
            return verdict;
    }
    /* Whether the provider already made the group the default destination
     * of a sender is not documented; connect() makes sure. */
    if (req->flags == MP_JL_SENDER_ONLY && connect_to_group(s, family, req) < 0)
        return -1;
    return MP_JOINED_NATIVE;
}

/* A plain socket (MP_SOCKET_PLAIN: its provider has no multipoint) never
 * asks WSAJoinLeaf, which would refuse it; its join is the options'. */
int mp__join_leaf(mp_sock_t s, int family, const mp_join_t *req)
{
    int native;

    if (bind_if_unbound(s, family, req) < 0)
        return -1;
    if (!req->plain && req->ifindex == 0 && req->source_len == 0) {
        native = native_join(s, family, req);
        if (native != MP_JOINED_BY_OPTION)
            return native;
    }
    /* A receiving socket is not connected: its receives would then be
     * limited to datagrams from the group address, that is to none. */
    if (req->flags != MP_JL_SENDER_ONLY && mp__add_membership(s, family, req) < 0)
        return -1;
    if (req->flags != MP_JL_RECEIVER_ONLY && req->ifindex != 0 &&
        send_interface(s, family, req->ifindex) < 0)
        return -1;
    if (req->flags == MP_JL_SENDER_ONLY && connect_to_group(s, family, req) < 0)
        return -1;
    return req->plain ? MP_JOINED_PLAIN : MP_JOINED_BY_OPTION;
}
