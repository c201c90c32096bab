/* mp_platform.h -- the seam between common.c and the platform files.
 *
 * common.c validates every argument, then calls exactly one of these.  Each
 * platform directory (posix/, win/) defines all of them; setup.py compiles
 * one directory.  Arguments arriving here are already valid: a platform
 * function only reports what the system says.
 */
#ifndef MP_PLATFORM_H
#define MP_PLATFORM_H

#include "mpoint.h"

int mp__socket_open(int family, mp_sock_t *out);
/* What mp__socket_open does to the socket it made, on a UDP socket of
 * family; and whether that is all it does beyond the runtime's own
 * socket(family, SOCK_DGRAM, IPPROTO_UDP) (1), or it needs a call of its own
 * (0: Windows, whose multipoint flags only WSASocketW takes). */
int mp__socket_setup(mp_sock_t s, int family);
int mp__socket_setup_suffices(void);
/* MP_JOINED_BY_OPTION or MP_JOINED_NATIVE (mpoint.h), or -1. */
int mp__join_leaf(mp_sock_t s, int family, const mp_join_t *req);
/* Receive-side membership only (group sets): no bind, no send set-up. */
int mp__add_membership(mp_sock_t s, int family, const mp_join_t *req);
int mp__drop_membership(mp_sock_t s, int family, const mp_join_t *req);
/* Makes s receive every group joined on the host at its port, not only its
 * own, with as large a receive buffer as the system allows: a group set's
 * shared receiver.  WSAEOPNOTSUPP where the stack delivers a group only to
 * the sockets that joined it (BSD, Windows). */
int mp__receive_every_group(mp_sock_t s, int family);
/* Binds s to the wildcard address of family and port. */
int mp__bind_port(mp_sock_t s, int family, unsigned short port);
int mp__close(mp_sock_t s);
/* CLOCK_REALTIME in ns: the clock of kernel receive timestamps. */
int64_t mp__realtime_ns(void);
int mp__get_int_option(mp_sock_t s, int family, int which, int *value);
int mp__set_int_option(mp_sock_t s, int family, int which, int value);
/* Interface lookups; s, when not MP_INVALID_SOCKET, is a socket the
 * platform may ask (Linux: its ioctl, so a join opens no other descriptor). */
int mp__interface_exists(mp_sock_t s, unsigned int ifindex);
int mp__interface_by_name(mp_sock_t s, const char *name, unsigned int *out);
int mp__interface_by_address(const struct sockaddr *addr, unsigned int *out);
/* common.c: whether a (NULL: no) and b hold the same IPv4 or IPv6 address,
 * ports and IPv6 zones aside -- how both platforms match an interface's
 * addresses. */
int mp__same_address(const struct sockaddr *a, const struct sockaddr *b);

/* The socket's pending error (SO_ERROR), cleared by reading; 0 if none. */
int mp__socket_error(mp_sock_t s);

/* which, for the int options */
#define MP_OPT_LOOPBACK 1
#define MP_OPT_SCOPE    2

/* Stores a Winsock error code as the platform's own code. */
void mp__set_wsa_error(int wsa_code);
/* mp__set_wsa_error, then -1: how the portable files (common.c, events.c,
 * batch.c) fail validation. */
int mp__fail(int wsa_code);
int mp__last_error(void);
/* Puts back a code mp__last_error returned (after clean-up calls). */
void mp__restore_error(int code);

#endif /* MP_PLATFORM_H */
