/* socket.c -- Winsock multipoint sockets: creation, the two multipoint
 * ioctls (SIO_MULTIPOINT_LOOPBACK, SIO_MULTICAST_SCOPE) with their
 * socket-option fallbacks, and the clocks.
 */
#include "win.h"

#define MP_WIN_FLAGS (WSA_FLAG_OVERLAPPED | WSA_FLAG_MULTIPOINT_C_LEAF | \
                      WSA_FLAG_MULTIPOINT_D_LEAF | WSA_FLAG_NO_HANDLE_INHERIT)

static int fail_closing(SOCKET s, int code)
{
    closesocket(s);
    WSASetLastError(code);
    return -1;
}

/* The provider behind s advertises multipoint (WSAPROTOCOL_INFOW,
 * XP1_SUPPORT_MULTIPOINT); 0 if it does not, -1 if it cannot be asked. */
static int provider_is_multipoint(SOCKET s)
{
    WSAPROTOCOL_INFOW info;
    int len = (int)sizeof(info);

    if (getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info, &len) == SOCKET_ERROR)
        return -1;
    return (info.dwServiceFlags1 & XP1_SUPPORT_MULTIPOINT) != 0;
}

/* What every mpoint socket gets, multipoint or plain.  Several receivers
 * of one group on one port share it through SO_REUSEADDR, as POSIX does; an
 * IPv6 socket speaks IPv6 only (the Windows default, made explicit).
 * Windows delivers a group's datagrams only to the sockets that joined it,
 * so there is no cross-talk to turn off (POSIX: IP_MULTICAST_ALL on Linux). */
static int setup_options(SOCKET s, int family)
{
    DWORD one = 1, off = FALSE, bytes = 0;

    if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, (const char *)&one, sizeof(one)) == SOCKET_ERROR ||
        (family == AF_INET6 &&
         setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, (const char *)&one, sizeof(one)) == SOCKET_ERROR))
        return -1;
    /* Windows reports an ICMP port unreachable for an earlier send as
     * WSAECONNRESET on the next receive of any UDP socket; POSIX reports it
     * only on connected ones.  Turned off so that a receive error means this
     * socket's own failure.  Best effort: a provider without the ioctl
     * keeps its own habit (Wine's is Linux's). */
    WSAIoctl(s, SIO_UDP_CONNRESET, &off, sizeof(off), NULL, 0, &bytes, NULL, NULL);
    return 0;
}

int mp__socket_setup(mp_sock_t s, int family)
{
    int multipoint;

    /* A provider may accept the flags without honouring them.  Without
     * multipoint support this is not the kind of socket that was asked for:
     * WSAESOCKTNOSUPPORT, WSASocket's "the specified socket type is not
     * supported in this address family" -- the type being a c_leaf/d_leaf
     * datagram socket.  Not WSAEPROTONOSUPPORT: UDP itself is supported, and
     * that code is also the spec's answer to lpCallerData. */
    multipoint = provider_is_multipoint(s);
    if (multipoint < 0)
        return -1;
    if (multipoint == 0) {
        WSASetLastError(WSAESOCKTNOSUPPORT);
        return -1;
    }
    return setup_options(s, family);
}

/* WSASocket with the non-rooted multipoint flags (common.c accepted only
 * C_LEAF|D_LEAF), overlapped as every Winsock socket CPython makes, and not
 * inherited by child processes; then mp__socket_setup.
 *
 * A layered provider (VPN, antivirus) that lacks XP1_SUPPORT_MULTIPOINT
 * refuses the flags, or takes them and fails the check below, with
 * WSAESOCKTNOSUPPORT; mp__plain_socket_fallback (common.c) then makes a
 * plain UDP socket, set up the same way except for the check, and says so:
 * MP_SOCKET_PLAIN (its joins go by socket options: MP_JOINED_PLAIN). */
static int open_plain(int family, mp_sock_t *out)
{
    SOCKET s = WSASocketW(family, SOCK_DGRAM, IPPROTO_UDP, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);

    if (s == INVALID_SOCKET)
        return -1;
    if (setup_options(s, family) < 0)
        return fail_closing(s, WSAGetLastError());
    *out = s;
    return MP_SOCKET_PLAIN;
}

int mp__socket_open(int family, mp_sock_t *out)
{
    SOCKET s;
    int err;

    if (mp__win_startup() < 0)
        return -1;
    s = WSASocketW(family, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, MP_WIN_FLAGS);
    if (s == INVALID_SOCKET) {
        err = WSAGetLastError();
        return mp__plain_socket_fallback(err) ? open_plain(family, out) : -1;
    }
    if (mp__socket_setup(s, family) < 0) {
        err = WSAGetLastError();
        closesocket(s);
        if (mp__plain_socket_fallback(err))
            return open_plain(family, out);
        WSASetLastError(err);
        return -1;
    }
    *out = s;
    return 0;
}

/* Only WSASocketW can ask for the multipoint flags: a socket someone else
 * made is never set up in their place. */
int mp__socket_setup_suffices(void)
{
    return 0;
}

/* Loopback and scope.  The Winsock form is an ioctl: SIO_MULTIPOINT_LOOPBACK
 * (a BOOL) and SIO_MULTICAST_SCOPE (an int of hops).  A provider that answers
 * WSAEOPNOTSUPP (Wine does, for both) gets the socket options of the same
 * meaning: IP_MULTICAST_LOOP / IP_MULTICAST_TTL, IPV6_MULTICAST_LOOP /
 * IPV6_MULTICAST_HOPS.  So does any other failure of the set: a provider
 * may answer WSAEINVAL (likely for IPv6) or WSAEFAULT, and a refusal of the
 * ioctl must not fail every socket as it is made; the option's own failure
 * is what gets reported, and the setter says which way the value went
 * (MP_SET_BY_IOCTL / MP_SET_BY_OPTION; Python's sock.option_method).  Whether the Microsoft provider keeps the ioctls and
 * the options as one state (a get after a set of the other kind) is open
 * until a real Windows run answers it (README.md).
 *
 * Loopback differs by side: Winsock's IP_MULTICAST_LOOP "applies only to
 * the receive path" (IPPROTO_IP socket options) -- whether this socket, as a
 * receiver, gets what this host sends to its groups; on POSIX it decides
 * whether this socket's own sends come back to local receivers.  A socket that both sends and receives (the
 * WSAJoinLeaf model: JL_BOTH) sees the same effect on both; a sender-only
 * socket's setting matters on POSIX, a receiver's on Windows.  mpoint reports
 * what the system does and does not emulate the other side. */
static DWORD ioctl_code(int which)
{
    return which == MP_OPT_LOOPBACK ? SIO_MULTIPOINT_LOOPBACK : SIO_MULTICAST_SCOPE;
}

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
    DWORD v = 0, bytes = 0;
    int level, name, len = (int)sizeof(v);

    /* WSAIoctl gives both ioctls as input-only (opcode setting I): a
     * provider that answers with a value anyway is believed; any other answer
     * (WSAEOPNOTSUPP, WSAEFAULT, no value) reads the option instead, whose
     * own failure then reports a socket that is not one. */
    if (WSAIoctl(s, ioctl_code(which), NULL, 0, &v, sizeof(v), &bytes, NULL, NULL) == 0 &&
        bytes == sizeof(v)) {
        *value = (int)v;
        return 0;
    }
    v = 0;
    int_option(family, which, &level, &name);
    if (getsockopt(s, level, name, (char *)&v, &len) == SOCKET_ERROR)
        return -1;
    /* A one-byte answer (BSD habit) is the low byte. */
    *value = len == 1 ? (int)*(unsigned char *)&v : (int)v;
    return 0;
}

int mp__set_int_option(mp_sock_t s, int family, int which, int value)
{
    DWORD v = (DWORD)value, bytes = 0;
    int level, name;

    if (WSAIoctl(s, ioctl_code(which), &v, sizeof(v), NULL, 0, &bytes, NULL, NULL) == 0)
        return MP_SET_BY_IOCTL;
    int_option(family, which, &level, &name);
    return setsockopt(s, level, name, (const char *)&v, sizeof(v)) == SOCKET_ERROR
        ? -1 : MP_SET_BY_OPTION;
}

int mp__socket_error(mp_sock_t s)
{
    int err = 0, len = (int)sizeof(err);

    if (getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&err, &len) == SOCKET_ERROR)
        return WSAGetLastError();
    return err;
}

/* Whether Windows delivers a group to a socket that did not join it is
 * open (README); until real Windows answers, a shared receiver is refused. */
int mp__receive_every_group(mp_sock_t s, int family)
{
    (void)s;
    (void)family;
    WSASetLastError(WSAEOPNOTSUPP);
    return -1;
}

int mp__close(mp_sock_t s)
{
    return closesocket(s) == SOCKET_ERROR ? -1 : 0;
}

/* 100 ns intervals from 1601-01-01 (FILETIME) to 1970-01-01. */
#define MP_FILETIME_UNIX_EPOCH 116444736000000000LL

/* The wall clock, as CLOCK_REALTIME on POSIX: the clock that receive
 * timestamps are reported in.  GetSystemTimePreciseAsFileTime (Windows 8)
 * has the resolution of the performance counter; GetSystemTimeAsFileTime
 * only the timer tick's. */
int64_t mp__realtime_ns(void)
{
    FILETIME ft;
    ULARGE_INTEGER t;

    GetSystemTimePreciseAsFileTime(&ft);
    t.LowPart = ft.dwLowDateTime;
    t.HighPart = ft.dwHighDateTime;
    return ((int64_t)t.QuadPart - MP_FILETIME_UNIX_EPOCH) * 100;
}

/* QueryPerformanceCounter never fails and its frequency is fixed at boot
 * (Windows XP and later), so the frequency is read once; the race of two
 * first readers stores the same value twice. */
static volatile LONGLONG qpc_frequency;

int64_t mp__win_ticks(void)
{
    LARGE_INTEGER now;

    QueryPerformanceCounter(&now);
    return now.QuadPart;
}

int64_t mp__win_ticks_to_ns(int64_t ticks)
{
    LONGLONG f = qpc_frequency;

    if (f == 0) {
        LARGE_INTEGER li;
        QueryPerformanceFrequency(&li);
        qpc_frequency = f = li.QuadPart;
    }
    /* Whole seconds first: ticks * 1e9 overflows after 15 minutes at 10 MHz. */
    return (ticks / f) * 1000000000LL + (ticks % f) * 1000000000LL / f;
}
