/* interface.c -- interface lookups by index, name and address (POSIX). */
#include <errno.h>
#include <string.h>
#include <ifaddrs.h>

#include "posix.h"

int mp__interface_exists(unsigned int ifindex)
{
    char name[IF_NAMESIZE];
    return if_indextoname(ifindex, name) != NULL;
}

int mp__interface_by_name(const char *name, unsigned int *out)
{
    *out = if_nametoindex(name);
    return *out == 0 ? -1 : 0;
}

static int same_address(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a == NULL || a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr,
                  sizeof(struct in6_addr)) == 0;
}

int mp__interface_by_address(const struct sockaddr *addr, unsigned int *out)
{
    struct ifaddrs *list, *it;

    *out = 0;
    if (getifaddrs(&list) < 0)
        return -1;
    for (it = list; it != NULL && *out == 0; it = it->ifa_next)
        if (same_address(it->ifa_addr, addr))
            *out = if_nametoindex(it->ifa_name);
    freeifaddrs(list);
    if (*out == 0) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    return 0;
}
