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

/* 0, or MP_SOCKET_PLAIN (mpoint.h) for a socket made without the
 * multipoint flags because the provider has none; -1 on failure. */
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
/* MP_SET_BY_OPTION or MP_SET_BY_IOCTL (mpoint.h), or -1. */
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

/* qos.c validated k against mp__qos_supported(); the platform applies it. */
unsigned int mp__qos_supported(void);
int mp__qos_apply(mp_sock_t s, int family, mp_qos_kernel_t *k);
void mp__qos_forget(mp_sock_t s, uint32_t flow);

/* The monotonic clock in ns, and a sleep (0, or -1 with the interrupt
 * code): mp_monotonic_ns and mp_sleep_ns (mpoint.h) as the OS has them
 * (posix/clock.c, win/clock.c). */
uint64_t mp__monotonic_ns(void);
int mp__sleep_ns(uint64_t ns);

/* Batch send (send.c validates): bufs[0..n), n >= 1, each within the UDP
 * maximum, to `to` (NULL: the connected peer); the count sent (>= 1), or
 * -1 with the system's code for the first datagram (posix/send_linux.c,
 * posix/send_darwin.c, win/send.c). */
long mp__send_batch(mp_sock_t s, const mp_sendbuf_t *bufs, size_t n,
                    const struct sockaddr_storage *to, mp_socklen_t tolen);
/* poll(2) / WSAPoll for writability: 1, 0 on timeout, -1 (posix/send.c,
 * win/send.c). */
int mp__wait_writable(mp_sock_t s, int timeout_ms);

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

/* ---- decisions of the Windows files, kept portable (common.c) ----------
 * so that every platform's suite tests them (ext/decide.pxi,
 * tests/test_win_decisions.py); the system calls stay in ext/win.  Codes
 * are Winsock's, as WSAGetLastError() gives them. */
#define MP_WSAEWOULDBLOCK 10035
/* WSAJoinLeaf returned INVALID_SOCKET and WSAGetLastError() said
 * wsa_code: MP_JOINED_BY_OPTION when there is no code (a stub that did
 * nothing, as Wine 8's: the socket options join), MP_JOINED_NATIVE for
 * WSAEWOULDBLOCK (the spec: on a non-blocking socket -- and WSAEventSelect
 * makes it one -- the join is in progress and completes as FD_CONNECT), else
 * -1: the provider's own failure. */
int mp__native_join_verdict(int wsa_code);
/* WSASocket with the multipoint flags, or the XP1_SUPPORT_MULTIPOINT check,
 * failed with wsa_code: 1 when a plain datagram socket, joined by socket
 * options, serves instead (WSAESOCKTNOSUPPORT: a layered provider -- VPN,
 * antivirus -- without multipoint support), else 0. */
int mp__plain_socket_fallback(int wsa_code);
/* What a poller with no socket to watch sleeps for a wait of timeout_ms
 * (-1: forever) before it returns 0: at most MP_EMPTY_WAIT_SLICE_MS, so that
 * its caller looks again (a registration made meanwhile, a group set
 * shutting down) instead of sleeping where nothing can wake it. */
#define MP_EMPTY_WAIT_SLICE_MS 100
int mp__empty_wait_ms(int timeout_ms);

#endif /* MP_PLATFORM_H */
