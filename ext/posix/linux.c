/* linux.c -- the Linux specifics behind posix.h. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../os_rules.h"
#include "posix.h"

const int mp__os_port_rule = MP_PORT_RULE_LINUX;

int mp__os_udp_socket(int family)
{
    return socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
}

/* Without this, a socket bound to the wildcard address receives every group
 * that any socket in the network namespace joined on its port. */
int mp__os_crosstalk_off(int fd, int family)
{
    int zero = 0;

    if (family == AF_INET)
        return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof(zero));
    /* IPV6_MULTICAST_ALL exists since Linux 4.20; older kernels say
     * ENOPROTOOPT, and their IPv6 sockets only ever see their own groups. */
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &zero, sizeof(zero)) < 0 &&
        errno != ENOPROTOOPT)
        return -1;
    return 0;
}

int mp__os_crosstalk_on(int fd, int family)
{
    int one = 1;

    if (family == AF_INET)
        return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &one, sizeof(one));
    return setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &one, sizeof(one));
}

int mp__os_send_interface(int fd, int family, unsigned int ifindex)
{
    if (family == AF_INET) {
        struct ip_mreqn mreq;
        memset(&mreq, 0, sizeof(mreq));
        mreq.imr_ifindex = (int)ifindex;
        return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof(mreq));
    }
    return setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex));
}

/* SIOCGIFINDEX / SIOCGIFNAME (netdevice(7)) on the caller's own socket: one
 * ioctl, where if_nametoindex(3) opens, asks and closes a socket of its own. */
unsigned int mp__os_interface_by_name(int fd, const char *name)
{
    struct ifreq ifr;

    if (fd < 0 || strlen(name) >= sizeof(ifr.ifr_name))
        return if_nametoindex(name);
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, name, strlen(name));
    if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0)
        return 0;
    return ifr.ifr_ifindex > 0 ? (unsigned int)ifr.ifr_ifindex : 0;
}

int mp__os_interface_exists(int fd, unsigned int ifindex)
{
    struct ifreq ifr;
    char name[IF_NAMESIZE];

    if (fd < 0 || ifindex > INT_MAX)
        return if_indextoname(ifindex, name) != NULL;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_ifindex = (int)ifindex;
    return ioctl(fd, SIOCGIFNAME, &ifr) == 0;
}
