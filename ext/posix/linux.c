/* linux.c -- the Linux specifics behind posix.h. */
#include <errno.h>
#include <string.h>

#include "posix.h"

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
