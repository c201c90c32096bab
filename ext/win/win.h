/* win.h -- what the Winsock files of ext/win share with each other.
 * setup.py compiles every C file there on Windows; nothing outside ext/win
 * includes this header. */
#ifndef MP_WIN_H
#define MP_WIN_H

#include "../mp_platform.h"     /* winsock2.h, ws2tcpip.h (mp_sys.h) */

#include <mswsock.h>
#include <windows.h>

/* Older SDK headers lack it; the value is winsock2.h's. */
#ifndef WSA_FLAG_NO_HANDLE_INHERIT
#define WSA_FLAG_NO_HANDLE_INHERIT 0x80
#endif

/* Winsock receive timestamping (learn.microsoft.com, "Winsock timestamping").
 * mstcpip.h declares it only for NTDDI_VERSION >= NTDDI_WIN10_FE, so the
 * values are spelled here under mpoint's own names: the ioctl with its
 * TIMESTAMPING_CONFIG input, and the SO_TIMESTAMP control message (level
 * SOL_SOCKET) that carries each datagram's receive time as a UINT64 count
 * of QueryPerformanceCounter ticks (software timestamps). */
#define MP_WIN_SIO_TIMESTAMPING _WSAIOW(IOC_VENDOR, 235)
#define MP_WIN_TIMESTAMPING_FLAG_RX 0x1
#define MP_WIN_SO_TIMESTAMP 0x300A
typedef struct mp_win_timestamping_config {
    ULONG flags;
    USHORT tx_timestamps_buffered;
} mp_win_timestamping_config_t;

/* WSAStartup(2.2), once per process and never undone (no WSACleanup: the
 * sockets may outlive any caller).  Every entry point that makes a socket or
 * asks the system calls it first, so WSANOTINITIALISED never reaches a user.
 * 0, or -1 with WSAStartup's code as the last error; a failure is retried by
 * the next call. */
int mp__win_startup(void);

/* WSARecvMsg, fetched once (SIO_GET_EXTENSION_FUNCTION_POINTER) through
 * socket s; NULL with the last error set if the provider has none. */
LPFN_WSARECVMSG mp__win_recvmsg(SOCKET s);

/* Turns on IP_PKTINFO or IPV6_PKTINFO, and asks for receive timestamps
 * (best effort: see batch.c).  0, or -1 with the last error. */
int mp__win_pktinfo_on(SOCKET s, int family);
int mp__win_timestamps_on(SOCKET s);

/* QueryPerformanceCounter: now, and a tick count in ns. */
int64_t mp__win_ticks(void);
int64_t mp__win_ticks_to_ns(int64_t ticks);

/* An IPv4 address of interface ifindex (network order) for the options that
 * name an interface by address; 0, or -1 with WSAEADDRNOTAVAIL. */
int mp__win_interface_ipv4(unsigned int ifindex, struct in_addr *out);

#endif /* MP_WIN_H */
