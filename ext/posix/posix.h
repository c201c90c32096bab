/* posix.h -- what the shared POSIX files need from the per-OS file
 * (linux.c, or darwin.c for macOS).  setup.py compiles one. */
#ifndef MP_POSIX_H
#define MP_POSIX_H

#include "../mp_platform.h"

/* A close-on-exec UDP socket of `family`, or -1 with errno set. */
int mp__os_udp_socket(int family);

/* The stack's rule for sharing a UDP port (MP_PORT_RULE_*, os_rules.h):
 * Linux's in linux.c, BSD's in darwin.c. */
extern const int mp__os_port_rule;
/* Sets what mp__port_sharing says for this stack, so that every receiver
 * of a port may bind it (socket.c).  0, or -1 with errno set. */
int mp__share_port(int fd);

/* Keeps the socket from receiving groups that other sockets joined
 * (Linux: IP_MULTICAST_ALL/IPV6_MULTICAST_ALL = 0; BSD filters per socket
 * already).  Returns 0, or -1 with errno set. */
int mp__os_crosstalk_off(int fd, int family);
/* The reverse, for mp__receive_every_group: -1 (EOPNOTSUPP) where a stack
 * cannot deliver groups a socket did not join. */
int mp__os_crosstalk_on(int fd, int family);

/* The reference loops' watch set (reference_<os>.c): a new one (a
 * descriptor), and fd added to it for reading.  -1 with errno set. */
int mp__os_ref_watch_open(void);
int mp__os_ref_watch_add(int wfd, int fd);

/* An interface's index by name (0: none), and whether index exists; fd, if
 * not MP_INVALID_SOCKET, is an open socket the lookup may use. */
unsigned int mp__os_interface_by_name(int fd, const char *name);
int mp__os_interface_exists(int fd, unsigned int ifindex);

/* join.c: whether an IPv6 group's scope needs a zone to be bound
 * (interface- and link-local multicast: ff01::/16, ff02::/16 and their flag
 * variants). */
int mp__needs_zone(const struct sockaddr_in6 *g);

/* Sends the socket's multicast datagrams out of interface `ifindex`. */
int mp__os_send_interface(int fd, int family, unsigned int ifindex);

#endif /* MP_POSIX_H */
