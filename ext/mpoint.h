/* mpoint.h -- the portable core API of mpoint.
 *
 * Model: Winsock 2's WSAJoinLeaf for a non-rooted (c_leaf/d_leaf) IP
 * multicast socket.  Every function here validates its arguments once
 * (common.c) and then hands them to exactly one platform implementation
 * (posix/..., win/...), declared in mp_platform.h.
 *
 * Error contract: a function returns 0 (or a handle) on success and -1 on
 * failure, with the platform's error code left where the platform keeps it
 * (errno on POSIX, WSAGetLastError() on Windows); mp_last_error() reads it.
 * Validation failures are expressed in Winsock's vocabulary (MP_WSAE*),
 * which mp_set_wsa_error() stores as the platform's equivalent code.
 */
#ifndef MPOINT_H
#define MPOINT_H

#include "mp_sys.h"

/* Winsock's values (winsock2.h), so numbers mean the same everywhere. */
#define MP_JL_SENDER_ONLY               0x01
#define MP_JL_RECEIVER_ONLY             0x02
#define MP_JL_BOTH                      0x04

#define MP_WSA_FLAG_OVERLAPPED          0x01
#define MP_WSA_FLAG_MULTIPOINT_C_ROOT   0x02
#define MP_WSA_FLAG_MULTIPOINT_C_LEAF   0x04
#define MP_WSA_FLAG_MULTIPOINT_D_ROOT   0x08
#define MP_WSA_FLAG_MULTIPOINT_D_LEAF   0x10
#define MP_WSA_FLAG_NO_HANDLE_INHERIT   0x80

/* The Winsock error numbers the validation layer raises itself. */
#define MP_WSAEFAULT            10014
#define MP_WSAEINVAL            10022
#define MP_WSAENOTSOCK          10038
#define MP_WSAEPROTONOSUPPORT   10043
#define MP_WSAESOCKTNOSUPPORT   10044
#define MP_WSAEOPNOTSUPP        10045
#define MP_WSAEAFNOSUPPORT      10047
#define MP_WSAEADDRNOTAVAIL     10049
#define MP_WSAEALREADY          10037
#define MP_WSAEISCONN           10056

#define MP_INVALID_SOCKET ((mp_sock_t)-1)

/* A join request, already parsed (mp_parse_address).  Mirrors WSAJoinLeaf's
 * arguments: name/namelen, the caller/callee buffers' lengths (IP multicast
 * carries no connect data), whether QoS was supplied, dwFlags; plus mpoint's
 * extensions: the interface and an optional source (source-specific join). */
typedef struct mp_join {
    struct sockaddr_storage group;
    mp_socklen_t group_len;
    struct sockaddr_storage source;
    mp_socklen_t source_len;        /* 0: any-source multicast */
    unsigned int ifindex;           /* 0: the system's choice */
    unsigned int flags;             /* one of MP_JL_* */
    size_t caller_len;              /* lpCallerData->len */
    int has_sqos;                   /* lpSQOS != NULL */
    int has_gqos;                   /* lpGQOS != NULL */
} mp_join_t;

/* Creates a UDP socket with WSASocket's multipoint flags.  Exactly one
 * control-plane flag (C_ROOT/C_LEAF) and one data-plane flag (D_ROOT/D_LEAF)
 * are required (else WSAEINVAL); rooted planes are WSAEOPNOTSUPP for now.
 * The socket is non-inheritable and never receives groups it did not join. */
int mp_socket_open(int family, int type, int proto, unsigned long flags,
                   mp_sock_t *out);

/* Parses a numeric address of `family` into out.  A string that is an
 * address of the other family is WSAEAFNOSUPPORT; anything else that is not
 * a numeric address, or a port outside 0..65535, is WSAEFAULT (the spec's
 * "name is not a valid part of the user address space"). */
int mp_parse_address(int family, const char *host, long long port,
                     unsigned long flowinfo, unsigned long scope_id,
                     struct sockaddr_storage *out, mp_socklen_t *out_len);

/* Resolves an interface given by index (checked to exist), or by a string
 * that is one of its numeric addresses or else its name, to an index.
 * An interface this host does not have: WSAEADDRNOTAVAIL. */
int mp_interface_by_index(long long ifindex, unsigned int *out);
int mp_interface_by_string(const char *name_or_address, unsigned int *out);

/* WSAJoinLeaf on a c_leaf socket of `family` (the socket's own).  An unbound
 * socket is bound by the system first, as the spec says: receivers to the
 * wildcard address and the group's port, senders to any free port.
 * Receivers (JL_RECEIVER_ONLY, JL_BOTH) add a membership; JL_SENDER_ONLY
 * adds none and makes the group the socket's default destination. */
int mp_join_leaf(mp_sock_t s, int family, const mp_join_t *req);

/* SIO_MULTIPOINT_LOOPBACK: whether this socket's own datagrams to the group
 * come back to receivers on this host.  SIO_MULTICAST_SCOPE: hops, 0..255. */
int mp_get_loopback(mp_sock_t s, int family, int *on);
int mp_set_loopback(mp_sock_t s, int family, int on);
int mp_get_scope(mp_sock_t s, int family, int *hops);
int mp_set_scope(mp_sock_t s, int family, long long hops);

/* The platform's code for the last failure (errno / WSAGetLastError()). */
int mp_last_error(void);

#endif /* MPOINT_H */
