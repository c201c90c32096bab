/* socket.c -- POSIX multipoint sockets: creation and the two multipoint
 * options (SIO_MULTIPOINT_LOOPBACK, SIO_MULTICAST_SCOPE in Winsock terms). */
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "../os_rules.h"
#include "posix.h"

int mp__socket_open(int family, mp_sock_t *out)
{
    int fd = mp__os_udp_socket(family);

    if (fd < 0)
        return -1;
    if (mp__socket_setup(fd, family) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    *out = fd;
    return 0;
}

/* mp__os_udp_socket is socket(family, SOCK_DGRAM, IPPROTO_UDP), made
 * non-inheritable: the call CPython's socket.socket() makes. */
int mp__socket_setup_suffices(void)
{
    return 1;
}

int mp__share_port(int fd)
{
    unsigned int opts = mp__port_sharing(mp__os_port_rule);
    int one = 1;

    if ((opts & MP_SHARE_REUSEADDR) &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        return -1;
    if ((opts & MP_SHARE_REUSEPORT) &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        return -1;
    return 0;
}

int mp__socket_setup(mp_sock_t fd, int family)
{
    int one = 1;

    /* Several receivers of one group on one port, as SO_REUSEADDR gives
     * Winsock multicast receivers, whatever address each binds (BSD needs
     * SO_REUSEPORT for that: port_sharing.c); an IPv6 socket speaks IPv6
     * only. */
    if (mp__share_port(fd) < 0 ||
        (family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        mp__os_crosstalk_off(fd, family) < 0)
        return -1;
    return 0;
}

int mp__receive_every_group(mp_sock_t s, int family)
{
    int size = 64 << 20;            /* the kernel caps it at net.core.rmem_max */

    if (mp__os_crosstalk_on(s, family) < 0)
        return -1;
    (void)setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));   /* best effort */
    return 0;
}

/* Level and name of an int option for a family: loopback or scope. */
static void int_option(int family, int which, int *level, int *name)
{
    if (family == AF_INET) {
        *level = IPPROTO_IP;
        *name = which == MP_OPT_LOOPBACK ? IP_MULTICAST_LOOP : IP_MULTICAST_TTL;
    } else {
        *level = IPPROTO_IPV6;
        *name = which == MP_OPT_LOOPBACK ? IPV6_MULTICAST_LOOP : IPV6_MULTICAST_HOPS;
    }
}

int mp__get_int_option(mp_sock_t s, int family, int which, int *value)
{
    int level, name;
    int v = 0;
    socklen_t len = sizeof(v);

    int_option(family, which, &level, &name);
    if (getsockopt(s, level, name, &v, &len) < 0)
        return -1;
    /* BSD answers a one-byte option with one byte when asked for less. */
    *value = len == 1 ? *(unsigned char *)&v : v;
    return 0;
}

int mp__set_int_option(mp_sock_t s, int family, int which, int value)
{
    int level, name;

    int_option(family, which, &level, &name);
    return setsockopt(s, level, name, &value, sizeof(value));
}

int mp__socket_error(mp_sock_t s)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

int mp__close(mp_sock_t s)
{
    return close(s);
}

int64_t mp__realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
