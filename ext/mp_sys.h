/* mp_sys.h -- the platform's socket headers and mpoint's own handle type.
 *
 * The only place where the platform is chosen inside C: everything else
 * picks its platform by which files the build compiles (setup.py).  Cython
 * never looks in here; it sees the opaque names declared in _core.pxd.
 */
#ifndef MP_SYS_H
#define MP_SYS_H

#ifdef _WIN32
#  include <winsock2.h>
#  include <ws2tcpip.h>
typedef SOCKET mp_sock_t;          /* a Winsock handle, not a CRT descriptor */
typedef int mp_socklen_t;
#else
#  include <sys/types.h>
#  include <sys/socket.h>
#  include <netinet/in.h>
#  include <arpa/inet.h>
#  include <net/if.h>
typedef int mp_sock_t;
typedef socklen_t mp_socklen_t;
#endif

/* BSD-derived stacks (macOS) carry the sockaddr's length in the address and
 * reject group requests without it. */
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
#  define MP_SET_SA_LEN(ss, len) ((ss)->ss_len = (unsigned char)(len))
#else
#  define MP_SET_SA_LEN(ss, len) ((void)(ss), (void)(len))
#endif

/* A hint to start loading the cache line at p (compilers without one: none). */
#if defined(__GNUC__) || defined(__clang__)
#  define MP_PREFETCH(p) __builtin_prefetch(p)
#else
#  define MP_PREFETCH(p) ((void)(p))
#endif

#endif /* MP_SYS_H */
