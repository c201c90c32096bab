/* mpoint.h -- the portable core API of mpoint.
 *
 * Model: Winsock 2's WSAJoinLeaf for a non-rooted (c_leaf/d_leaf) IP
 * multicast socket.  Every function here validates its arguments once
 * (common.c) and then hands them to exactly one platform implementation
 * (posix/..., win/...), declared in mp_platform.h.
 *
 * Error contract: a function returns 0 (or a handle) on success and -1 on
 * failure, with the platform's error code left where the platform keeps it
 * (errno on POSIX, WSAGetLastError() on Windows); mp_last_error() reads it.
 * Validation failures are expressed in Winsock's vocabulary (MP_WSAE*),
 * which mp_set_wsa_error() stores as the platform's equivalent code.
 */
#ifndef MPOINT_H
#define MPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "mp_sys.h"

/* Winsock's values (winsock2.h), so numbers mean the same everywhere. */
#define MP_JL_SENDER_ONLY               0x01
#define MP_JL_RECEIVER_ONLY             0x02
#define MP_JL_BOTH                      0x04

#define MP_WSA_FLAG_OVERLAPPED          0x01
#define MP_WSA_FLAG_MULTIPOINT_C_ROOT   0x02
#define MP_WSA_FLAG_MULTIPOINT_C_LEAF   0x04
#define MP_WSA_FLAG_MULTIPOINT_D_ROOT   0x08
#define MP_WSA_FLAG_MULTIPOINT_D_LEAF   0x10
#define MP_WSA_FLAG_NO_HANDLE_INHERIT   0x80

/* The Winsock error numbers the validation layer raises itself. */
#define MP_WSAEFAULT            10014
#define MP_WSAEINVAL            10022
#define MP_WSAENOTSOCK          10038
#define MP_WSAEPROTONOSUPPORT   10043
#define MP_WSAESOCKTNOSUPPORT   10044
#define MP_WSAEOPNOTSUPP        10045
#define MP_WSAEAFNOSUPPORT      10047
#define MP_WSAEADDRNOTAVAIL     10049
#define MP_WSAEALREADY          10037
#define MP_WSAEISCONN           10056
#define MP_WSAENOTCONN          10057
#define MP_WSAENOBUFS           10055
#define MP_WSAECONNABORTED      10053
#define MP_WSAEMSGSIZE          10040

#define MP_INVALID_SOCKET ((mp_sock_t)-1)

/* A join request, already parsed (mp_parse_address).  Mirrors WSAJoinLeaf's
 * arguments: name/namelen, the caller/callee buffers' lengths (IP multicast
 * carries no connect data), whether QoS was supplied, dwFlags; plus mpoint's
 * extensions: the interface and an optional source (source-specific join). */
typedef struct mp_join {
    struct sockaddr_storage group;
    mp_socklen_t group_len;
    struct sockaddr_storage source;
    mp_socklen_t source_len;        /* 0: any-source multicast */
    unsigned int ifindex;           /* 0: the system's choice */
    unsigned int flags;             /* one of MP_JL_* */
    size_t caller_len;              /* lpCallerData->len */
    int has_sqos;                   /* lpSQOS != NULL (applied by the caller: */
    int has_gqos;                   /* lpGQOS != NULL  mp_qos_apply, shaper.c) */
    /* The interface as the caller named it, for mp_join_leaf to resolve
     * into ifindex (an interface this host does not have: WSAEADDRNOTAVAIL):
     * if_text, a name or one of its addresses; else, with if_given, the
     * index if_index.  Neither: ifindex as it is. */
    const char *if_text;
    long long if_index;
    int if_given;
    /* What the caller knows of the socket's local address: MP_BOUND_YES,
     * MP_BOUND_NO (mp_join_leaf binds without asking) or MP_BOUND_ASK. */
    int bound;
    /* The socket is plain (mp_socket_open said MP_SOCKET_PLAIN): the join
     * is made by socket options and reported as MP_JOINED_PLAIN. */
    int plain;
} mp_join_t;

#define MP_BOUND_ASK 0
#define MP_BOUND_NO  1
#define MP_BOUND_YES 2

/* Creates a UDP socket with WSASocket's multipoint flags.  Exactly one
 * control-plane flag (C_ROOT/C_LEAF) and one data-plane flag (D_ROOT/D_LEAF)
 * are required (else WSAEINVAL); rooted planes are WSAEOPNOTSUPP for now.
 * The socket is non-inheritable and never receives groups it did not join.
 * mp_socket_check makes the checks alone (0, or -1 with the code).
 * Where mp_socket_setup_suffices() is 1 (POSIX), mp_socket_open is the plain
 * socket(family, SOCK_DGRAM, IPPROTO_UDP), non-inheritable, then
 * mp_socket_setup: a binding may let its runtime make the socket (CPython
 * then skips the getsockname it makes to check an adopted descriptor) and
 * set it up with mp_socket_setup, after mp_socket_check of the same
 * arguments.  Where it is 0 (Windows) only mp_socket_open makes one.
 * mp_socket_open returns 0, or MP_SOCKET_PLAIN: the provider (a layered one:
 * VPN, antivirus) refused multipoint sockets with WSAESOCKTNOSUPPORT, and a
 * plain UDP socket, set up the same way, was made instead; its joins go by
 * socket options (MP_JOINED_PLAIN). */
#define MP_SOCKET_PLAIN 1
int mp_socket_check(int family, int type, int proto, unsigned long flags);
int mp_socket_setup_suffices(void);
int mp_socket_setup(mp_sock_t s, int family);
int mp_socket_open(int family, int type, int proto, unsigned long flags,
                   mp_sock_t *out);

/* Parses a numeric address of `family` into out.  A string that is an
 * address of the other family is WSAEAFNOSUPPORT; anything else that is not
 * a numeric address, or a port outside 0..65535, is WSAEFAULT (the spec's
 * "name is not a valid part of the user address space"). */
int mp_parse_address(int family, const char *host, long long port,
                     unsigned long flowinfo, unsigned long scope_id,
                     struct sockaddr_storage *out, mp_socklen_t *out_len);

/* Resolves an interface given by index (checked to exist), or by a string
 * that is one of its numeric addresses or else its name, to an index.
 * An interface this host does not have: WSAEADDRNOTAVAIL. */
int mp_interface_by_index(long long ifindex, unsigned int *out);
int mp_interface_by_string(const char *name_or_address, unsigned int *out);

/* WSAJoinLeaf on a c_leaf socket of `family` (the socket's own).  An unbound
 * socket is bound by the system first, as the spec says: senders to any free
 * port, receivers to the group's port -- JL_RECEIVER_ONLY to the group's own
 * address where the stack delivers by it (POSIX; the bind then costs the
 * same however many sockets share the port), else the wildcard address.
 * Receivers (JL_RECEIVER_ONLY, JL_BOTH) turn metadata on (mp_enable_metadata)
 * and then add a membership; JL_SENDER_ONLY adds none and makes the group
 * the socket's default destination.
 * Returns how the join was made (>= 0) or -1: */
#define MP_JOINED_BY_OPTION 0   /* socket options (IP_ADD_MEMBERSHIP, MCAST_JOIN_*...) */
#define MP_JOINED_NATIVE    1   /* Winsock's own WSAJoinLeaf */
#define MP_JOINED_PLAIN     2   /* socket options: the socket is plain (MP_SOCKET_PLAIN) */
int mp_join_leaf(mp_sock_t s, int family, const mp_join_t *req);
/* The argument checks of mp_join_leaf alone, for a socket of family. */
int mp_join_check(int family, const mp_join_t *req);
/* The non-blocking form: invalid arguments fail at once (-1), as on a
 * blocking socket; the join's own outcome (0 or the platform's code) goes to
 * *result, for the caller to report as FD_CONNECT.  Returns how a successful
 * join was made (MP_JOINED_*; MP_JOINED_BY_OPTION after a failed one). */
int mp_join_leaf_deferred(mp_sock_t s, int family, const mp_join_t *req, int *result);

/* SIO_MULTIPOINT_LOOPBACK: whether this socket's own datagrams to the group
 * come back to receivers on this host.  SIO_MULTICAST_SCOPE: hops, 0..255. */
int mp_get_loopback(mp_sock_t s, int family, int *on);
/* The setters return how the value was set, or -1: */
#define MP_SET_BY_OPTION 0      /* IP_MULTICAST_LOOP/TTL, IPV6_MULTICAST_LOOP/HOPS */
#define MP_SET_BY_IOCTL  1      /* SIO_MULTIPOINT_LOOPBACK / SIO_MULTICAST_SCOPE */
int mp_set_loopback(mp_sock_t s, int family, int on);
int mp_get_scope(mp_sock_t s, int family, int *hops);
int mp_set_scope(mp_sock_t s, int family, long long hops);

/* The platform's code for the last failure (errno / WSAGetLastError()). */
int mp_last_error(void);
/* Whether a platform code means "interrupted by a signal" (retry, PEP 475)
 * or "would block" (nothing ready on a non-blocking socket). */
int mp_error_is_interrupt(int code);
int mp_error_is_would_block(int code);

/* ---- network events: the WSAEventSelect model ---------------------------
 *
 * An event set watches registered sockets and reports Winsock's network
 * events with Winsock's re-enabling rules on every platform (events.c):
 * FD_READ fires once and is re-armed by a receive call (mp_evset_rearm),
 * FD_WRITE fires once after registration and again only after a send hit
 * WSAEWOULDBLOCK, FD_CONNECT and FD_CLOSE fire once.  The OS poller behind
 * it (epoll.c, kqueue.c, poll.c, ...) only reports readiness.
 *
 * Waiting is three calls so that a caller can release its own lock (the GIL)
 * around mp_evset_poll alone: prepare and collect touch the registrations,
 * poll touches only the poller's buffers.  One thread waits at a time; the
 * others may add, modify and remove meanwhile (under the caller's lock),
 * and a post, due time or drop meanwhile wakes the poll (mp_evset_wake). */
#define MP_FD_READ                     0x001
#define MP_FD_WRITE                    0x002
#define MP_FD_OOB                      0x004
#define MP_FD_ACCEPT                   0x008
#define MP_FD_CONNECT                  0x010
#define MP_FD_CLOSE                    0x020
#define MP_FD_QOS                      0x040
#define MP_FD_GROUP_QOS                0x080
#define MP_FD_ROUTING_INTERFACE_CHANGE 0x100
#define MP_FD_ADDRESS_LIST_CHANGE      0x200
#define MP_FD_ALL_EVENTS               0x3ff
#define MP_FD_MAX_EVENTS               10

typedef struct mp_evset mp_evset_t;

/* One socket's fired events: WSAEnumNetworkEvents' lNetworkEvents and
 * iErrorCode[] (platform codes; only the slots of fired events are set). */
typedef struct mp_netevents {
    unsigned int slot;
    unsigned int events;
    int errors[MP_FD_MAX_EVENTS];
} mp_netevents_t;

/* The pollers this build has, best first; NULL after the last. */
const char *mp_evset_backend(int i);
/* backend NULL: the first.  Unknown name: WSAEINVAL. */
int mp_evset_open(const char *backend, mp_evset_t **out);
const char *mp_evset_backend_name(const mp_evset_t *set);
void mp_evset_close(mp_evset_t *set);
/* Ends the poll of a wait running in another thread (between prepare and
 * collect) at once; nothing, and no system call, when none runs or it was
 * woken already.  post, post_at and drop call it themselves; a caller
 * closing the set while a wait runs calls it so the wait notices. */
void mp_evset_wake(mp_evset_t *set);
/* mp_evset_close in a child process after fork(), for a set the parent
 * made: frees it without changing anything the parent's set shares. */
void mp_evset_forget(mp_evset_t *set);
/* events: FD_* bits (unknown bits: WSAEINVAL).  *slot names the registration. */
int mp_evset_add(mp_evset_t *set, mp_sock_t s, unsigned int events, unsigned int *slot);
int mp_evset_modify(mp_evset_t *set, unsigned int slot, unsigned int events);
int mp_evset_remove(mp_evset_t *set, unsigned int slot);
/* The socket of slot is about to close while a wait may be running: it
 * leaves the poller now (its descriptor must not be watched once closed)
 * and the registration stays, watching nothing, with FD_CLOSE posted
 * (WSAECONNABORTED) whatever it was registered for, so that the running
 * wait reports it once (the local close ends that wait); the collect that
 * reports it removes the registration. */
int mp_evset_drop(mp_evset_t *set, unsigned int slot);
/* A re-enabling function was called: a receive (FD_READ), a send that would
 * block (FD_WRITE). */
void mp_evset_rearm(mp_evset_t *set, unsigned int slot, unsigned int events);
/* Queues an event the library itself completes (FD_CONNECT after a join)
 * for the next collect, with its platform error code (0: success). */
int mp_evset_post(mp_evset_t *set, unsigned int slot, unsigned int event, int error);
/* Queues event (error 0) for the first collect at or after due_ns
 * (mp_monotonic_ns): prepare shortens its wait to the earliest due time,
 * so a wait reports it then.  How a shaped non-blocking socket gets its
 * FD_WRITE when its tokens return (a send that would block re-enables
 * FD_WRITE, WSAEventSelect).  Ignored (0) when the registration is not
 * interested in event; a second due time for the slot keeps the earlier
 * one; removing or dropping the slot forgets it.  A wait already running
 * in another thread is woken to shorten its timeout (mp_evset_wake). */
int mp_evset_post_at(mp_evset_t *set, unsigned int slot, unsigned int event, uint64_t due_ns);
/* The events posted for slot that the next collect will report (or drop). */
unsigned int mp_evset_posted(const mp_evset_t *set, unsigned int slot);
int mp_evset_prepare(mp_evset_t *set, int *timeout_ms);
int mp_evset_poll(mp_evset_t *set, int timeout_ms);     /* ready count, or -1 */
int mp_evset_collect(mp_evset_t *set, int nready, const mp_netevents_t **out);
/* A wait that leaves between prepare and collect (its poll failed, a signal
 * handler raised) says so, so that a post meanwhile costs no wake-up;
 * collect does it itself, and a second call does nothing. */
void mp_evset_end_wait(mp_evset_t *set);

/* ---- batch receive ------------------------------------------------------
 *
 * Preallocated memory for up to max_datagrams datagrams of up to max_size
 * bytes each, filled by one call (recvmmsg on Linux, a recvmsg loop
 * elsewhere) with, when metadata is on, each datagram's destination group
 * and arriving interface (IP_PKTINFO / IPV6_PKTINFO) and kernel receive time
 * (SO_TIMESTAMPING's software stamp on Linux, SO_TIMESTAMP on macOS,
 * SIO_TIMESTAMPING on Windows).  Metadata is true or absent, never a
 * substitute: a field the kernel did not record when the datagram arrived
 * (its socket asked too late, or the platform cannot) reads as unknown --
 * ifindex 0, timestamp 0, group of family 0.  Nothing is allocated per
 * datagram. */
typedef struct mp_batch {
    size_t max_datagrams;
    size_t max_size;
    int metadata;
    size_t count;                       /* datagrams held since the last receive */
    unsigned char *data;                /* datagram i at data + i * max_size */
    uint32_t *sizes;                    /* payload bytes kept (<= max_size) */
    uint8_t *truncated;                 /* 1: the datagram was longer than max_size */
    int64_t *timestamps;                /* ns since the epoch; 0: unknown */
    uint32_t *ifindex;                  /* arriving interface; 0: unknown */
    struct sockaddr_storage *sources;   /* the sender */
    struct sockaddr_storage *groups;    /* the destination address; ss_family 0: unknown */
    void *platform;                     /* the platform file's scratch */
    /* The caller's word on the socket's mode for the next receive, which
     * Winsock cannot read back (FIONBIO only sets it) and which Winsock's
     * receive cannot override (no MSG_DONTWAIT): 1 (mp_batch_new's default)
     * the socket may be in blocking mode, so win/batch.c makes it
     * non-blocking around the receive and blocking again after it; 0 it is
     * non-blocking (a timeout is set, or it is registered in an event set).
     * POSIX ignores it (MSG_DONTWAIT). */
    int may_block;
} mp_batch_t;

/* max_datagrams in 1..65536, max_size in 1..65536 and their product (the
 * data area, bytes) at most MP_BATCH_MAX_AREA (64 MiB), else WSAEINVAL;
 * out of memory: WSAENOBUFS. */
#define MP_BATCH_MAX_AREA ((size_t)64 << 20)
int mp_batch_new(size_t max_datagrams, size_t max_size, int metadata, mp_batch_t **out);
void mp_batch_free(mp_batch_t *batch);
/* Asks the kernel for what metadata needs (IP_PKTINFO or IPV6_RECVPKTINFO,
 * receive timestamps); affects only datagrams that arrive afterwards, which
 * is why every receiving join and group-set shard calls it first. */
int mp_enable_metadata(mp_sock_t s, int family);
/* Receives what is ready without blocking: the count (>= 1), or -1 with the
 * platform's would-block code when nothing is. */
int mp_recv_batch(mp_sock_t s, mp_batch_t *batch);
/* The same, keeping the datagrams the batch holds and adding after them:
 * how many were added (0 when the batch is full), or -1 as above. */
int mp_recv_batch_append(mp_sock_t s, mp_batch_t *batch);
/* Waits until s is readable or timeout_ms passes (-1: forever): 1, 0 on
 * timeout, -1 on error (EINTR included). */
int mp_wait_readable(mp_sock_t s, int timeout_ms);

/* ---- the send path's token bucket (shaper.c) ----------------------------
 *
 * A traffic shaper after the IntServ token-bucket specification (TSpec,
 * RFC 2210 section 3.1, RFC 2215 section 3.6; Winsock's FLOWSPEC carries the
 * same fields: TokenRate, TokenBucketSize, PeakBandwidth,
 * MinimumPolicedSize, MaxSduSize).  A datagram of L bytes counts as
 * c = max(L, min_policed) bytes and conforms when
 *  - the token bucket holds c tokens: tokens accrue at token_rate bytes/s
 *    up to bucket bytes, and the bucket is full when the shaper is set;
 *  - the peak bucket holds c tokens: it accrues at peak bytes/s up to a
 *    depth of max_sdu bytes, or, without a max_sdu, of the datagram at
 *    hand (so that datagrams leave at most one at a time at the peak rate:
 *    each waits c / peak after the bucket was last emptied).  This is the
 *    TSpec's second constraint, M + p*T, with M = max_sdu.
 * A datagram conforms when both hold, and is debited from both.
 * token_rate 0 means no rate limit (the token bucket is ignored), peak 0
 * no peak limit, max_sdu 0 no size limit; min_policed 0 counts every
 * datagram as its size.
 *
 * Arithmetic is exact integer: tokens are kept in nano-bytes (1e-9 byte),
 * so t ns at r bytes/s add exactly t * r of them; nothing is rounded but a
 * wait, up to the next whole ns.  Every field is at most MP_SHAPER_MAX
 * (FLOWSPEC's ULONG), so a full bucket (< 2^32 * 1e9 < 2^63) and any
 * refill fit in 64 bits whatever the elapsed time: no drift, no overflow,
 * at any rate up to 4 GB/s, over any run.  Time is the caller's, in ns of
 * one monotonic clock (mp_monotonic_ns); a time earlier than the last one
 * seen adds nothing.  The shaper takes no lock: its caller serialises the
 * calls on one shaper (mpoint: the GIL). */
#define MP_SHAPER_MAX 0xFFFFFFFFull

typedef struct mp_shaper {
    uint64_t token_rate;        /* bytes/s; 0: no rate limit */
    uint64_t bucket;            /* bytes */
    uint64_t peak;              /* bytes/s; 0: no peak limit */
    uint64_t min_policed;       /* bytes; a smaller datagram counts as this many */
    uint64_t max_sdu;           /* bytes; 0: no limit */
    uint64_t tokens;            /* nano-bytes in the token bucket */
    uint64_t peak_tokens;       /* nano-bytes in the peak bucket */
    uint64_t last_ns;           /* when the buckets were last refilled */
} mp_shaper_t;

/* Sets all parameters and fills both buckets, at time now_ns.  WSAEINVAL
 * (the shaper unchanged) for a value above MP_SHAPER_MAX, or a bucket no
 * datagram could ever pass: token_rate given with a bucket of 0, or smaller
 * than min_policed or max_sdu; a peak below token_rate (RFC 2215: p >= r);
 * min_policed above max_sdu (RFC 2210: m <= M). */
int mp_shaper_set(mp_shaper_t *sh, uint64_t token_rate, uint64_t bucket, uint64_t peak,
                  uint64_t min_policed, uint64_t max_sdu, uint64_t now_ns);
/* Whether a datagram of len bytes can ever conform: 0, or -1 with
 * WSAEMSGSIZE when it exceeds max_sdu, or its counted size exceeds the
 * token bucket (without a max_sdu). */
int mp_shaper_check(const mp_shaper_t *sh, size_t len);
/* Debits a datagram of len bytes if it conforms at now_ns and returns 0;
 * else changes nothing but the refill and returns the ns to wait until it
 * would (>= 1).  UINT64_MAX for a datagram mp_shaper_check refuses. */
uint64_t mp_shaper_take(mp_shaper_t *sh, size_t len, uint64_t now_ns);
/* Gives back what mp_shaper_take debited for a datagram the system did not
 * send after all (each bucket at most full). */
void mp_shaper_refund(mp_shaper_t *sh, size_t len);

/* The monotonic clock of shaper and event-set due times, ns from an
 * arbitrary start (CLOCK_MONOTONIC; QueryPerformanceCounter). */
uint64_t mp_monotonic_ns(void);
/* Sleeps ns (0: returns at once): 0, or -1 with the platform's interrupt
 * code (EINTR) when a signal cut it short.  Windows sleeps whole ms,
 * rounded up (Sleep's granularity: the system timer, up to 15.6 ms). */
int mp_sleep_ns(uint64_t ns);

/* ---- batch send (send.c) ------------------------------------------------
 *
 * Datagrams bufs[0..n) sent in order from one socket to one destination in
 * as few system calls as the platform allows: sendmmsg(2) on Linux, in
 * chunks of 1024; sendmsg(2) in a loop on macOS; WSASendTo (WSASend for a
 * connected socket) in a loop on Windows.  The buffers are the caller's,
 * never copied. */
typedef struct mp_sendbuf {
    const void *base;
    size_t len;
} mp_sendbuf_t;

/* The largest UDP payload over IPv4 (65535 - 20 - 8) and IPv6 (65535 - 8,
 * jumbograms aside). */
#define MP_UDP_MAX_IPV4 65507u
#define MP_UDP_MAX_IPV6 65527u

/* Checks every datagram first: one longer than family's UDP maximum is
 * WSAEMSGSIZE and nothing is sent (*bad: its index).  to NULL (tolen 0):
 * the connected peer.  Then sends: returns how many were sent, in order
 * from bufs[0] (>= 1, and fewer than n only when the system failed on the
 * next one, whose error is dropped: the caller sees it again on its next
 * send), or -1 with the system's code when the first failed (the
 * would-block code on a full non-blocking socket: mp_error_is_would_block).
 * n 0: 0.  Blocks only as the socket's mode does. */
long mp_send_batch(mp_sock_t s, int family, const mp_sendbuf_t *bufs, size_t n,
                   const struct sockaddr_storage *to, mp_socklen_t tolen, size_t *bad);
/* Waits until s is writable or timeout_ms passes (-1: forever): 1, 0 on
 * timeout, -1 on error (EINTR included). */
int mp_wait_writable(mp_sock_t s, int timeout_ms);

/* ---- group sets ---------------------------------------------------------
 *
 * Receive-only memberships of many groups on one port and interface, spread
 * over as many sockets ("shards", at most per_socket memberships each) as the
 * kernel's per-socket limits need; every shard is bound to the port, never
 * receives groups it did not join (cross-talk off), reports each datagram's
 * destination group (IP_PKTINFO), and is watched by one event set.  Joins and
 * leaves run as one C loop; leaves and close go newest first, which is the
 * kernel's cheap end of its membership lists.  Each membership keeps
 * statistics, updated as datagrams are received.  Every function takes the
 * set's own lock, so any may run while another thread waits in recv.
 *
 * Ending a set is two calls.  mp_groupset_shutdown, from any thread at any
 * time, marks it closing and returns at once: a join or leave in progress
 * stops before its next member (that one and the rest get WSAENOTSOCK), and
 * so do later ones; recv fails with WSAENOTSOCK from its next call on (one
 * in progress returns when its poll does).  mp_groupset_close frees the set
 * (every membership left): only once no call on it runs or can start. */
typedef struct mp_groupset mp_groupset_t;

/* A membership as a set names it: 34 bytes where a request is ~290, so a
 * batch of 20,000 stays in cache on its way through the join loop.
 * Addresses are in network byte order, an IPv4 one in the first 4 bytes and
 * the rest zero; no source (has_source 0) is any-source. */
typedef struct mp_member {
    unsigned char family;       /* AF_INET or AF_INET6 */
    unsigned char has_source;
    unsigned char group[16];
    unsigned char source[16];
} mp_member_t;

/* Parses a numeric group and optional source (NULL: any-source) of family
 * into *out and checks them as a receive-only join (mp_join_check): 0, or
 * -1 with the error set and *out zeroed (of no family: the join and leave
 * loops refuse it).  The only validation a member gets. */
int mp_member_parse(int family, const char *group, const char *source, mp_member_t *out);

/* mpoint's optional sequence header: the payload starts with the 4 bytes
 * "mpSQ" and a 64-bit big-endian sequence number. */
#define MP_SEQ_MAGIC "mpSQ"
#define MP_SEQ_HEADER_SIZE 12

typedef struct mp_group_stats {
    uint64_t datagrams;
    uint64_t bytes;
    int64_t joined_ns;          /* CLOCK_REALTIME when the join returned */
    int64_t first_ns;           /* receive time of the first datagram; 0: none yet */
    int64_t last_ns;
    uint64_t sequenced;         /* datagrams that carried the sequence header */
    uint64_t gaps;              /* sequence numbers missing so far */
    uint64_t duplicates;
    uint64_t reordered;         /* arrived after a higher sequence number */
    uint64_t highest;           /* highest sequence number seen */
    uint64_t window;            /* bit i: highest - i was seen */
} mp_group_stats_t;

/* shared_receiver: one socket receives for every shard (groupset.c says
 * when that pays); WSAEOPNOTSUPP where the stack cannot (BSD, Windows). */
int mp_groupset_open(int family, unsigned short port, unsigned int ifindex,
                     unsigned int per_socket, int shared_receiver, mp_groupset_t **out);
/* Marks the set closing (see above); frees nothing.  Any thread. */
void mp_groupset_shutdown(mp_groupset_t *gs);
/* Leaves everything (shards closed newest first) and frees the set; no other
 * call may be running on it, or start. */
void mp_groupset_close(mp_groupset_t *gs);
/* Frees a set a forked child inherited, changing nothing of the parent's:
 * closes the child's copies of its descriptors, leaves nothing, takes no
 * lock.  The child's only call on such a set. */
void mp_groupset_forget(mp_groupset_t *gs);
/* Joins members[0..n) (from mp_member_parse; one of another family, or
 * zeroed, gets WSAEAFNOSUPPORT).  results[i]: 0, or the platform code for
 * that member (WSAEISCONN if it is one already; WSAENOTSOCK once the set is
 * closing); a failure never undoes the others.  Returns the number
 * joined, or -1 if the set itself failed (no memory). */
long mp_groupset_join(mp_groupset_t *gs, const mp_member_t *members, size_t n, int *results);
/* Leaves members, newest membership first; results as for join (WSAENOTCONN:
 * not a member). */
long mp_groupset_leave(mp_groupset_t *gs, const mp_member_t *members, size_t n, int *results);
size_t mp_groupset_size(mp_groupset_t *gs);
size_t mp_groupset_sockets(mp_groupset_t *gs);
/* Copies up to max memberships (oldest first), with their statistics. */
size_t mp_groupset_list(mp_groupset_t *gs, mp_join_t *reqs, mp_group_stats_t *stats,
                        size_t max);
/* Receives into batch from the shards with data, waiting up to timeout_ms
 * (-1: forever) for the first; counts every datagram in its membership's
 * statistics.  Returns the count (0: timed out), or -1 (EINTR included: the
 * caller checks signals and calls again with the time left; WSAENOTSOCK
 * once the set is closing). */
int mp_groupset_recv(mp_groupset_t *gs, mp_batch_t *batch, int timeout_ms);

/* ---- QoS: what a flowspec asks of the system ------------------------------
 *
 * The decision (which flowspec fields become which of these, and what raises
 * WSAEOPNOTSUPP) is portable Python, mpoint/qos_plan.py; the token bucket is
 * shaper.c.  This is the rest: the marks and sizes the kernel applies.  A
 * field left at its "leave" value is not touched. */
typedef struct mp_qos_kernel {
    int dscp;                   /* 0..63: IP_TOS / IPV6_TCLASS = dscp << 2
                                 * (Windows: qWAVE's outgoing DSCP); -1 leave */
    int priority;               /* 0..7: SO_PRIORITY (Linux); -1 leave */
    uint64_t pacing;            /* bytes/s: SO_MAX_PACING_RATE (Linux); 0 leave,
                                 * UINT64_MAX no limit */
    uint64_t rcvbuf;            /* bytes: SO_RCVBUF; 0 leave */
    /* Windows: qWAVE adds a socket to a flow towards a destination (the
     * group); dest/dest_len name it.  flow is the socket's flow id, 0 before
     * the first mark, kept by the caller for the next call. */
    const struct sockaddr *dest;
    mp_socklen_t dest_len;
    uint32_t flow;
} mp_qos_kernel_t;

#define MP_QOS_DSCP     0x1u
#define MP_QOS_PRIORITY 0x2u
#define MP_QOS_PACING   0x4u
#define MP_QOS_RCVBUF   0x8u

/* The MP_QOS_* bits this platform can apply (Windows: DSCP only where
 * qWAVE is present). */
unsigned int mp_qos_supported(void);
/* Applies k to s (a field out of range: WSAEINVAL; a field the platform
 * cannot apply: WSAEOPNOTSUPP, before any call is made).  0, or -1 with
 * the error of the call that failed. */
int mp_qos_apply(mp_sock_t s, int family, mp_qos_kernel_t *k);
/* Windows: takes s out of its qWAVE flow (before it closes); elsewhere
 * nothing. */
void mp_qos_forget(mp_sock_t s, uint32_t flow);

#endif /* MPOINT_H */
