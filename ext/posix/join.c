/* join.c -- WSAJoinLeaf on POSIX, for a non-rooted IP multicast socket.
 *
 * The spec's steps, in order: bind an unbound socket; for receivers add the
 * membership (MCAST_JOIN_GROUP, or MCAST_JOIN_SOURCE_GROUP for a
 * source-specific join); for senders choose the outgoing interface and, for
 * JL_SENDER_ONLY, make the group the default destination with connect().
 * A receiving socket is never connected: Linux delivers nothing from a group
 * to a connected UDP socket.  Arguments were validated in common.c.
 */
#include <errno.h>
#include <string.h>

#include "posix.h"

static unsigned short local_port(int fd, int *err)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        *err = 1;
        return 0;
    }
    *err = 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int mp__needs_zone(const struct sockaddr_in6 *g)
{
    unsigned int scope = g->sin6_addr.s6_addr[1] & 0x0f;
    return scope == 1 || scope == 2;
}

/* The address an unbound socket takes (mpoint.h, mp_join_leaf): senders any
 * free port; a JL_RECEIVER_ONLY socket the group itself, which both Linux
 * and BSD deliver by (ip(7), the BSD multicast bind), so the kernel finds it
 * in its own hash slot instead of walking every socket on the port, and it
 * hears only its group; JL_BOTH the wildcard address, since its peers'
 * unicast replies come to its port.  A zoned IPv6 group without a zone
 * binds the wildcard address. */
static socklen_t local_address(int family, const mp_join_t *req, struct sockaddr_storage *ss)
{
    int own = req->flags == MP_JL_RECEIVER_ONLY;

    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        const struct sockaddr_in *g = (const struct sockaddr_in *)&req->group;
        a->sin_family = AF_INET;
        if (req->flags != MP_JL_SENDER_ONLY)
            a->sin_port = g->sin_port;
        if (own)
            a->sin_addr = g->sin_addr;
        MP_SET_SA_LEN(ss, sizeof(*a));
        return sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        const struct sockaddr_in6 *g = (const struct sockaddr_in6 *)&req->group;
        unsigned int zone = g->sin6_scope_id ? g->sin6_scope_id : req->ifindex;
        a->sin6_family = AF_INET6;
        if (req->flags != MP_JL_SENDER_ONLY)
            a->sin6_port = g->sin6_port;
        if (own && (!mp__needs_zone(g) || zone != 0)) {
            a->sin6_addr = g->sin6_addr;
            if (mp__needs_zone(g))
                a->sin6_scope_id = zone;
        }
        MP_SET_SA_LEN(ss, sizeof(*a));
        return sizeof(*a);
    }
}

/* "If the socket is unbound, unique values are assigned to the local
 * association by the system."  req->bound says what the caller knows; when
 * it does not know (or believes it unbound), the bind is tried (one call
 * where asking first takes two): a socket bound already refuses it with
 * EINVAL and keeps its own address. */
static int bind_if_unbound(int fd, int family, const mp_join_t *req)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int err;

    if (req->bound == MP_BOUND_YES)
        return 0;
    len = local_address(family, req, &ss);
    if (bind(fd, (struct sockaddr *)&ss, len) == 0)
        return 0;
    if (errno != EINVAL)
        return -1;
    if (local_port(fd, &err) != 0)
        return 0;                           /* bound before: nothing to do */
    if (!err)
        errno = EINVAL;
    return -1;
}

static int membership(int fd, int family, const mp_join_t *req, int join)
{
    int level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;

    if (req->source_len == 0) {
        struct group_req gr;
        memset(&gr, 0, sizeof(gr));
        gr.gr_interface = req->ifindex;
        memcpy(&gr.gr_group, &req->group, (size_t)req->group_len);
        return setsockopt(fd, level, join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP,
                          &gr, sizeof(gr));
    } else {
        struct group_source_req gsr;
        memset(&gsr, 0, sizeof(gsr));
        gsr.gsr_interface = req->ifindex;
        memcpy(&gsr.gsr_group, &req->group, (size_t)req->group_len);
        memcpy(&gsr.gsr_source, &req->source, (size_t)req->source_len);
        return setsockopt(fd, level,
                          join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP,
                          &gsr, sizeof(gsr));
    }
}

int mp__add_membership(mp_sock_t s, int family, const mp_join_t *req)
{
    return membership(s, family, req, 1);
}

int mp__drop_membership(mp_sock_t s, int family, const mp_join_t *req)
{
    return membership(s, family, req, 0);
}

int mp__bind_port(mp_sock_t s, int family, unsigned short port)
{
    struct sockaddr_storage ss;
    socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);

    memset(&ss, 0, sizeof(ss));
    ss.ss_family = (sa_family_t)family;
    if (family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
    MP_SET_SA_LEN(&ss, len);
    return bind(s, (struct sockaddr *)&ss, len);
}

static int connect_to_group(int fd, int family, const mp_join_t *req)
{
    struct sockaddr_storage dest = req->group;

    /* A link-scoped IPv6 group needs a zone: the chosen interface. */
    if (family == AF_INET6 && req->ifindex != 0 &&
        ((struct sockaddr_in6 *)&dest)->sin6_scope_id == 0)
        ((struct sockaddr_in6 *)&dest)->sin6_scope_id = req->ifindex;
    return connect(fd, (struct sockaddr *)&dest, req->group_len);
}

int mp__join_leaf(mp_sock_t s, int family, const mp_join_t *req)
{
    if (bind_if_unbound(s, family, req) < 0)
        return -1;
    if (req->flags != MP_JL_SENDER_ONLY && mp__add_membership(s, family, req) < 0)
        return -1;
    if (req->flags != MP_JL_RECEIVER_ONLY && req->ifindex != 0 &&
        mp__os_send_interface(s, family, req->ifindex) < 0)
        return -1;
    if (req->flags == MP_JL_SENDER_ONLY)
        return connect_to_group(s, family, req);
    return 0;
}
