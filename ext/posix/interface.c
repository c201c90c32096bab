/* interface.c -- interface lookups by index, name and address (POSIX). */
#include <errno.h>
#include <string.h>
#include <ifaddrs.h>

#include "posix.h"

int mp__interface_exists(mp_sock_t s, unsigned int ifindex)
{
    return mp__os_interface_exists(s, ifindex);
}

int mp__interface_by_name(mp_sock_t s, const char *name, unsigned int *out)
{
    *out = mp__os_interface_by_name(s, name);
    return *out == 0 ? -1 : 0;
}

int mp__interface_by_address(const struct sockaddr *addr, unsigned int *out)
{
    struct ifaddrs *list, *it;

    *out = 0;
    if (getifaddrs(&list) < 0)
        return -1;
    for (it = list; it != NULL && *out == 0; it = it->ifa_next)
        if (mp__same_address(it->ifa_addr, addr))
            *out = mp__os_interface_by_name(MP_INVALID_SOCKET, it->ifa_name);
    freeifaddrs(list);
    if (*out == 0) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    return 0;
}
