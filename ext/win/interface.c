/* interface.c -- interface lookups by index, name and address (Windows, IP
 * Helper API).
 *
 * An interface index names one interface for both families (NET_IFINDEX);
 * GetAdaptersAddresses reports it as IfIndex, and as Ipv6IfIndex when IPv6
 * is bound to the interface.  Names: Windows has several for one interface,
 * and each is accepted -- the NDIS name that if_nametoindex knows
 * ("ethernet_32768"), the alias users see ("Ethernet", "Wi-Fi"; the
 * adapter's FriendlyName, compared ignoring case as Windows does), and the
 * adapter's GUID name ("{4D36E972-...}").
 */
#include <stdlib.h>
#include <string.h>

#include "win.h"
#include <iphlpapi.h>

int mp__interface_exists(mp_sock_t s, unsigned int ifindex)
{
    NET_LUID luid;

    (void)s;
    if (mp__win_startup() < 0)
        return 0;
    return ConvertInterfaceIndexToLuid((NET_IFINDEX)ifindex, &luid) == NO_ERROR;
}

/* GetAdaptersAddresses into a buffer the caller frees; NULL with the last
 * error set.  The list can grow between the sizing call and the next, hence
 * the loop (bounded: a machine does not gain adapters forever). */
static IP_ADAPTER_ADDRESSES *adapters(ULONG flags)
{
    ULONG size = 16 * 1024, rc = ERROR_BUFFER_OVERFLOW;
    IP_ADAPTER_ADDRESSES *list = NULL;
    int tries;

    for (tries = 0; tries < 4 && rc == ERROR_BUFFER_OVERFLOW; tries++) {
        free(list);
        list = malloc(size);
        if (list == NULL) {
            WSASetLastError(WSAENOBUFS);
            return NULL;
        }
        rc = GetAdaptersAddresses(AF_UNSPEC, flags, NULL, list, &size);
    }
    if (rc != NO_ERROR) {
        free(list);
        /* ERROR_NO_DATA: no adapters at all, so not this one either. */
        WSASetLastError(rc == ERROR_NOT_ENOUGH_MEMORY ? WSAENOBUFS : WSAEADDRNOTAVAIL);
        return NULL;
    }
    return list;
}

static unsigned int index_of(const IP_ADAPTER_ADDRESSES *a, int family)
{
    if (family == AF_INET6 && a->Ipv6IfIndex != 0)
        return a->Ipv6IfIndex;
    return a->IfIndex != 0 ? a->IfIndex : a->Ipv6IfIndex;
}

int mp__interface_by_name(mp_sock_t s, const char *name, unsigned int *out)
{
    IP_ADAPTER_ADDRESSES *list, *a;
    WCHAR wide[256];

    (void)s;
    *out = 0;
    if (mp__win_startup() < 0)
        return -1;
    *out = if_nametoindex(name);
    if (*out != 0)
        return 0;
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1, wide, 256) == 0) {
        WSASetLastError(WSAEADDRNOTAVAIL);
        return -1;
    }
    list = adapters(GAA_FLAG_SKIP_UNICAST | GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST |
                    GAA_FLAG_SKIP_DNS_SERVER);
    if (list == NULL)
        return -1;
    for (a = list; a != NULL && *out == 0; a = a->Next)
        if ((a->FriendlyName != NULL &&
             CompareStringOrdinal(a->FriendlyName, -1, wide, -1, TRUE) == CSTR_EQUAL) ||
            (a->AdapterName != NULL && _stricmp(a->AdapterName, name) == 0))
            *out = index_of(a, AF_UNSPEC);
    free(list);
    if (*out == 0) {
        WSASetLastError(WSAEADDRNOTAVAIL);
        return -1;
    }
    return 0;
}

/* An IPv6 address is compared without its zone, as on POSIX: a link-local
 * address names its interface by itself on this host. */
int mp__interface_by_address(const struct sockaddr *addr, unsigned int *out)
{
    IP_ADAPTER_ADDRESSES *list, *a;
    IP_ADAPTER_UNICAST_ADDRESS *u;

    *out = 0;
    if (mp__win_startup() < 0)
        return -1;
    list = adapters(GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST |
                    GAA_FLAG_SKIP_DNS_SERVER | GAA_FLAG_SKIP_FRIENDLY_NAME);
    if (list == NULL)
        return -1;
    for (a = list; a != NULL && *out == 0; a = a->Next)
        for (u = a->FirstUnicastAddress; u != NULL && *out == 0; u = u->Next)
            if (mp__same_address(u->Address.lpSockaddr, addr))
                *out = index_of(a, addr->sa_family);
    free(list);
    if (*out == 0) {
        WSASetLastError(WSAEADDRNOTAVAIL);
        return -1;
    }
    return 0;
}

/* The first IPv4 address of the interface whose IPv4 index is ifindex. */
int mp__win_interface_ipv4(unsigned int ifindex, struct in_addr *out)
{
    IP_ADAPTER_ADDRESSES *list, *a;
    IP_ADAPTER_UNICAST_ADDRESS *u;
    int found = 0;

    list = adapters(GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST |
                    GAA_FLAG_SKIP_DNS_SERVER | GAA_FLAG_SKIP_FRIENDLY_NAME);
    if (list == NULL)
        return -1;
    for (a = list; a != NULL && !found; a = a->Next) {
        if (a->IfIndex != ifindex)
            continue;
        for (u = a->FirstUnicastAddress; u != NULL && !found; u = u->Next) {
            if (u->Address.lpSockaddr != NULL && u->Address.lpSockaddr->sa_family == AF_INET) {
                *out = ((const struct sockaddr_in *)u->Address.lpSockaddr)->sin_addr;
                found = 1;
            }
        }
    }
    free(list);
    if (!found) {
        WSASetLastError(WSAEADDRNOTAVAIL);
        return -1;
    }
    return 0;
}
