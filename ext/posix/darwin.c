/* darwin.c -- the macOS specifics behind posix.h. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "../os_rules.h"
#include "posix.h"

/* XNU follows BSD: SO_REUSEADDR shares a UDP port only among sockets bound
 * to a multicast address (in_pcbbind), and join.c binds the wildcard. */
const int mp__os_port_rule = MP_PORT_RULE_BSD;

int mp__os_udp_socket(int family)
{
    int fd = socket(family, SOCK_DGRAM, IPPROTO_UDP);

    if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* XNU has no IP_MULTICAST_ALL: which groups a socket hears is udp_input's
 * rule (a socket with memberships hears only those; one without may hear
 * every group joined on its port: open until a Mac runs it, README).
 * GroupSet drops what is not its shard's in C either way (groupset.c). */
int mp__os_crosstalk_off(int fd, int family)
{
    (void)fd;
    (void)family;
    return 0;
}

int mp__os_crosstalk_on(int fd, int family)
{
    (void)fd;
    (void)family;
    errno = EOPNOTSUPP;
    return -1;
}

int mp__os_send_interface(int fd, int family, unsigned int ifindex)
{
    if (family == AF_INET)
        return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IFINDEX, &ifindex, sizeof(ifindex));
    return setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex));
}

/* if_nametoindex(3) and if_indextoname(3): XNU has no SIOCGIFINDEX. */
unsigned int mp__os_interface_by_name(int fd, const char *name)
{
    (void)fd;
    return if_nametoindex(name);
}

int mp__os_interface_exists(int fd, unsigned int ifindex)
{
    char name[IF_NAMESIZE];

    (void)fd;
    return if_indextoname(ifindex, name) != NULL;
}
