/* groupset.c -- many receive-only memberships on one port (mpoint.h).
 *
 * Why shards: Linux caps memberships per socket (igmp_max_memberships) and a
 * join's cost grows with the memberships already on its socket, while a
 * small count per socket keeps every join near the kernel's fastest.  Each
 * shard is a multipoint socket bound to the set's port with cross-talk off,
 * so a datagram reaches exactly the shard that joined its group, and the
 * group is read from the datagram's destination address (IP_PKTINFO).
 *
 * A shared receiver (Linux only) turns that around: the shards hold the
 * memberships unbound, and one more socket, bound to the port, receives
 * every group joined on the host there (IP_MULTICAST_ALL on).  The kernel
 * then hands each datagram to one socket on the port instead of testing
 * every shard's membership list, so its cost per datagram no longer grows
 * with the shard count; the price is one receive buffer for the whole set
 * and the other groups on the port, which admit() drops.
 *
 * Concurrency: every entry point takes gs->lock, except that recv drops it
 * around the blocking poll; the caller may release its own lock (the GIL)
 * around any of them.  A join or leave holds gs->lock for its whole batch
 * (a leave's table positions must not move under it), so the closing flag
 * has a lock of its own, gs->flag_lock, taken alone by mp_groupset_shutdown
 * and inside gs->lock by the loops (never the other way round): the loops
 * read it once per member and per shard they open, recv on entry.
 * mp_groupset_close frees; its caller makes sure no call runs or starts
 * (the binding counts the calls in progress: groupset.pxi).
 */
#include <stdlib.h>
#include <string.h>

#include "mp_platform.h"
#include "mp_mutex.h"

#define MP_NO_ENTRY ((size_t)-1)
#define MP_EMPTY 0xffffffffu          /* table slot states (slot_t.index) */
#define MP_TOMBSTONE 0xfffffffeu

/* A table slot: the entry's index and 32 more bits of its key's hash, so a
 * probe past other keys reads the table only, never their entries. */
typedef struct {
    uint32_t index;
    uint32_t tag;
} slot_t;

typedef struct {
    mp_sock_t sock;
    unsigned int count;          /* memberships held */
    unsigned int capacity;       /* per_socket, or less if the kernel said so */
    unsigned int slot;           /* registration in gs->events */
    unsigned char listed;        /* in gs->roomy */
    unsigned char pending;       /* in gs->pending */
} shard_t;

typedef mp_member_t gkey_t;      /* what identifies a membership */

typedef struct {                 /* small: 20,000 of them stay in cache */
    gkey_t key;                  /* the request is rebuilt from it (request_of) */
    int live;
    size_t shard;
    uint64_t order;              /* join order: leaves go newest first */
    mp_group_stats_t st;
} entry_t;

struct mp_groupset {
    int family;
    unsigned short port;
    unsigned int ifindex, per_socket;
    int shared;                          /* a shared receiver: shard 0 */
    mp_mutex_t lock;
    mp_mutex_t flag_lock;                /* guards closing alone */
    int closing;                         /* mp_groupset_shutdown was called */
    mp_evset_t *events;
    shard_t *shards;
    size_t nshards, cap_shards;
    size_t *roomy, nroomy;               /* shards with room, a stack */
    size_t *pending, head, npending;     /* ring: shards reported readable, not drained */
    size_t *by_slot;                     /* event-set slot -> shard */
    entry_t *entries;
    size_t nentries, cap_entries, live;
    size_t sourced;                      /* live source-specific memberships */
    size_t *free_entries, nfree;
    slot_t *table;                       /* open addressing, linear probing */
    size_t table_cap, table_used;
    uint64_t next_order;
};

/* The platform's code for a Winsock code (as mp__set_wsa_error stores it). */
static int code_of(int wsa)
{
    mp__set_wsa_error(wsa);
    return mp__last_error();
}

/* Whether mp_groupset_shutdown was called (any thread, any time). */
static int is_closing(mp_groupset_t *gs)
{
    int c;

    mp_mutex_lock(&gs->flag_lock);
    c = gs->closing;
    mp_mutex_unlock(&gs->flag_lock);
    return c;
}

/* ---- keys and the table ------------------------------------------------- */

static void addr_bytes(const struct sockaddr_storage *ss, unsigned char out[16])
{
    memset(out, 0, 16);
    if (ss->ss_family == AF_INET)
        memcpy(out, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    else if (ss->ss_family == AF_INET6)
        memcpy(out, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
}

static gkey_t make_key(const struct sockaddr_storage *group, const struct sockaddr_storage *source)
{
    gkey_t k;
    memset(&k, 0, sizeof(k));
    k.family = (unsigned char)group->ss_family;
    addr_bytes(group, k.group);
    if (source != NULL && source->ss_family != 0) {
        k.has_source = 1;
        addr_bytes(source, k.source);
    }
    return k;
}

/* The common case without a request: numeric addresses that parse, a
 * multicast group, a unicast source.  1 when it filled *out; 0 sends the
 * member down the full path (mp_parse_address + mp_join_check), which says
 * what is wrong. */
static int member_fast(int family, const char *group, const char *source, mp_member_t *out)
{
    static const unsigned char zero[16];
    size_t len = family == AF_INET ? 4 : 16;

    memset(out, 0, sizeof(*out));
    out->family = (unsigned char)family;
    if (group == NULL || inet_pton(family, group, out->group) != 1 ||
        (family == AF_INET ? (out->group[0] >> 4) != 0xe : out->group[0] != 0xff))
        return 0;
    if (source == NULL)
        return 1;
    out->has_source = 1;
    return inet_pton(family, source, out->source) == 1 &&
           (family == AF_INET ? (out->source[0] >> 4) != 0xe : out->source[0] != 0xff) &&
           memcmp(out->source, zero, len) != 0;
}

int mp_member_parse(int family, const char *group, const char *source, mp_member_t *out)
{
    mp_join_t req;                      /* scratch: the check takes a request */

    if ((family == AF_INET || family == AF_INET6) && member_fast(family, group, source, out))
        return 0;
    memset(&req, 0, sizeof(req));
    req.flags = MP_JL_RECEIVER_ONLY;
    /* Port 1 stands for the set's (a request needs one; the set has one). */
    if (mp_parse_address(family, group, 1, 0, 0, &req.group, &req.group_len) < 0 ||
        (source != NULL &&
         mp_parse_address(family, source, 0, 0, 0, &req.source, &req.source_len) < 0) ||
        mp_join_check(family, &req) < 0) {
        memset(out, 0, sizeof(*out));       /* of no family: the loops refuse it */
        return -1;
    }
    *out = make_key(&req.group, source != NULL ? &req.source : NULL);
    return 0;
}

/* The membership request of a key: on the set's port and interface. */
static void request_of(const mp_groupset_t *gs, const gkey_t *k, mp_join_t *req)
{
    /* Only what the platform reads: the addresses up to their lengths. */
    req->source_len = 0;
    req->ifindex = gs->ifindex;
    req->flags = MP_JL_RECEIVER_ONLY;
    req->caller_len = 0;
    req->has_sqos = req->has_gqos = 0;
    if (k->family == AF_INET) {
        struct sockaddr_in *g = (struct sockaddr_in *)&req->group;
        memset(g, 0, sizeof(*g));
        g->sin_family = AF_INET;
        g->sin_port = htons(gs->port);
        memcpy(&g->sin_addr, k->group, 4);
        req->group_len = (mp_socklen_t)sizeof(*g);
        if (k->has_source) {
            struct sockaddr_in *src = (struct sockaddr_in *)&req->source;
            memset(src, 0, sizeof(*src));
            src->sin_family = AF_INET;
            memcpy(&src->sin_addr, k->source, 4);
            req->source_len = (mp_socklen_t)sizeof(*src);
        }
    } else {
        struct sockaddr_in6 *g = (struct sockaddr_in6 *)&req->group;
        memset(g, 0, sizeof(*g));
        g->sin6_family = AF_INET6;
        g->sin6_port = htons(gs->port);
        memcpy(&g->sin6_addr, k->group, 16);
        req->group_len = (mp_socklen_t)sizeof(*g);
        if (k->has_source) {
            struct sockaddr_in6 *src = (struct sockaddr_in6 *)&req->source;
            memset(src, 0, sizeof(*src));
            src->sin6_family = AF_INET6;
            memcpy(&src->sin6_addr, k->source, 16);
            req->source_len = (mp_socklen_t)sizeof(*src);
        }
    }
    MP_SET_SA_LEN(&req->group, req->group_len);
    if (req->source_len)
        MP_SET_SA_LEN(&req->source, req->source_len);
}

/* A multiply-xorshift mix of the key's words: groups differ in a few
 * bytes, and every bit of those must reach the table index. */
static size_t hash_key(const gkey_t *k)
{
    uint64_t w[5] = {0, 0, 0, 0, 0}, h = 0x9e3779b97f4a7c15ULL;
    int i;

    memcpy(w, k, sizeof(*k));
    for (i = 0; i < 5; i++) {
        h ^= w[i];
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }
    return (size_t)h;
}

/* The table position holding k (whose hash is h), or MP_NO_ENTRY. */
static size_t lookup(const mp_groupset_t *gs, const gkey_t *k, size_t h)
{
    size_t mask = gs->table_cap - 1, pos;
    uint32_t tag = (uint32_t)(h >> 32);

    if (gs->table_cap == 0)
        return MP_NO_ENTRY;
    for (pos = h & mask;; pos = (pos + 1) & mask) {
        const slot_t *sl = &gs->table[pos];
        if (sl->index == MP_EMPTY)
            return MP_NO_ENTRY;
        if (sl->index != MP_TOMBSTONE && sl->tag == tag &&
            memcmp(&gs->entries[sl->index].key, k, sizeof(*k)) == 0)
            return pos;
    }
}

static size_t find_pos(const mp_groupset_t *gs, const gkey_t *k)
{
    return lookup(gs, k, hash_key(k));
}

static entry_t *find(mp_groupset_t *gs, const gkey_t *k)
{
    size_t pos = find_pos(gs, k);
    return pos == MP_NO_ENTRY ? NULL : &gs->entries[gs->table[pos].index];
}

/* Puts index (of a key hashing to h) in the first free slot of its run. */
static void place(slot_t *table, size_t mask, size_t index, size_t h, size_t *used)
{
    size_t pos = h & mask;

    while (table[pos].index != MP_EMPTY && table[pos].index != MP_TOMBSTONE)
        pos = (pos + 1) & mask;
    if (table[pos].index == MP_EMPTY)
        (*used)++;
    table[pos].index = (uint32_t)index;
    table[pos].tag = (uint32_t)(h >> 32);
}

static int rehash(mp_groupset_t *gs, size_t cap)
{
    slot_t *t = malloc(cap * sizeof(*t));
    size_t i, used = 0;

    if (t == NULL)
        return -1;
    for (i = 0; i < cap; i++)
        t[i].index = MP_EMPTY;
    for (i = 0; i < gs->nentries; i++)
        if (gs->entries[i].live)
            place(t, cap - 1, i, hash_key(&gs->entries[i].key), &used);
    free(gs->table);
    gs->table = t;
    gs->table_cap = cap;
    gs->table_used = used;
    return 0;
}

/* Room for more entries (and their table slots) than there are now:
 * 0 or -1 (no memory).  A batch reserves its whole count up front, so its
 * loop never rehashes. */
static int reserve_entries(mp_groupset_t *gs, size_t more)
{
    if ((gs->table_used + more) * 2 > gs->table_cap) {  /* keep the load under 1/2 */
        size_t cap = 64;
        while (cap < (gs->live + more) * 4)
            cap *= 2;
        if (rehash(gs, cap) < 0)
            return -1;
    }
    if (gs->nfree < more && gs->nentries + (more - gs->nfree) > gs->cap_entries) {
        size_t cap = gs->cap_entries ? gs->cap_entries : 64;
        void *p;
        while (cap < gs->nentries + (more - gs->nfree))
            cap *= 2;
        if (cap >= MP_TOMBSTONE)                /* indexes are 32-bit in the table */
            return -1;
        p = realloc(gs->entries, cap * sizeof(*gs->entries));
        if (p == NULL)
            return -1;
        gs->entries = p;
        if ((p = realloc(gs->free_entries, cap * sizeof(*gs->free_entries))) == NULL)
            return -1;
        gs->free_entries = p;
        gs->cap_entries = cap;
    }
    return 0;
}

/* Starts loading the table slot where a lookup of a key hashing to h
 * begins: a batch asks for the next member's while the kernel works on this
 * one, so its probe does not wait on memory (20,000 members' table is past
 * L2). */
static void prefetch_slot(const mp_groupset_t *gs, size_t h)
{
    if (gs->table_cap != 0)
        MP_PREFETCH(&gs->table[h & (gs->table_cap - 1)]);
}

static void insert(mp_groupset_t *gs, size_t index, size_t h)
{
    place(gs->table, gs->table_cap - 1, index, h, &gs->table_used);
}

/* ---- shards ------------------------------------------------------------- */

/* Grows every per-shard array together. */
static int grow_shards(mp_groupset_t *gs)
{
    size_t cap = gs->cap_shards ? gs->cap_shards * 2 : 16, i, *ring;
    void *p;

    if ((p = realloc(gs->shards, cap * sizeof(*gs->shards))) == NULL)
        return -1;
    gs->shards = p;
    if ((p = realloc(gs->roomy, cap * sizeof(*gs->roomy))) == NULL)
        return -1;
    gs->roomy = p;
    if ((p = realloc(gs->by_slot, cap * sizeof(*gs->by_slot))) == NULL)
        return -1;
    gs->by_slot = p;
    if ((ring = malloc(cap * sizeof(*ring))) == NULL)
        return -1;
    for (i = 0; i < gs->npending; i++)          /* unwrap the ring */
        ring[i] = gs->pending[(gs->head + i) % gs->cap_shards];
    free(gs->pending);
    gs->pending = ring;
    gs->head = 0;
    gs->cap_shards = cap;
    return 0;
}

/* A new shard: 0, or the platform's code.  A receiver is bound to the port
 * and watched; with a shared receiver, the shards that hold memberships are
 * neither (they never read). */
static int new_shard(mp_groupset_t *gs, int receiver, size_t *out)
{
    shard_t sh;
    int err;

    if (gs->nshards == gs->cap_shards && grow_shards(gs) < 0)
        return code_of(MP_WSAENOBUFS);
    memset(&sh, 0, sizeof(sh));
    sh.capacity = receiver && gs->shared ? 0 : gs->per_socket;
    if (mp_socket_open(gs->family, SOCK_DGRAM, 0,
                       MP_WSA_FLAG_MULTIPOINT_C_LEAF | MP_WSA_FLAG_MULTIPOINT_D_LEAF,
                       &sh.sock) < 0)
        return mp__last_error();
    /* A receiver asks for metadata before it can receive anything: bound, a
     * shared receiver hears every shard's groups at once. */
    if (receiver && (mp_enable_metadata(sh.sock, gs->family) < 0 ||
                     (gs->shared && mp__receive_every_group(sh.sock, gs->family) < 0))) {
        err = mp__last_error();
        mp__close(sh.sock);
        return err;
    }
    if (!receiver) {                            /* holds memberships, never reads */
        sh.slot = MP_EMPTY;
        gs->shards[gs->nshards] = sh;
        *out = gs->nshards++;
        return 0;
    }
    if (mp__bind_port(sh.sock, gs->family, gs->port) < 0 ||
        mp_evset_add(gs->events, sh.sock, MP_FD_READ, &sh.slot) < 0) {
        err = mp__last_error();
        mp__close(sh.sock);
        return err;
    }
    if (sh.slot >= gs->cap_shards) {            /* slots are handed out densely */
        mp__close(sh.sock);
        return code_of(MP_WSAENOBUFS);
    }
    gs->by_slot[sh.slot] = gs->nshards;
    gs->shards[gs->nshards] = sh;
    *out = gs->nshards++;
    return 0;
}

/* A shard with room, making one if none has: 0, or the platform's code. */
static int roomy_shard(mp_groupset_t *gs, size_t *out)
{
    int err;

    while (gs->nroomy > 0) {
        size_t i = gs->roomy[gs->nroomy - 1];
        if (gs->shards[i].count < gs->shards[i].capacity) {
            *out = i;
            return 0;
        }
        gs->shards[i].listed = 0;
        gs->nroomy--;
    }
    if ((err = new_shard(gs, !gs->shared, out)) != 0)
        return err;
    gs->shards[*out].listed = 1;
    gs->roomy[gs->nroomy++] = *out;
    return 0;
}

/* Opens, before a batch's joins, the shards it will need beyond the room
 * there is (as a C program would open its sockets first), stacked so that
 * the oldest is filled first.  Best effort: a shard it cannot open now is
 * opened (or its error reported) by the join that needs it. */
static void open_shards(mp_groupset_t *gs, size_t n)
{
    size_t room = 0, i, first = gs->nshards, want, si;

    for (i = 0; i < gs->nroomy; i++) {
        const shard_t *sh = &gs->shards[gs->roomy[i]];
        if (sh->count < sh->capacity)
            room += sh->capacity - sh->count;
    }
    if (n <= room || gs->nroomy != 0)
        return;
    want = (n - room + gs->per_socket - 1) / gs->per_socket;
    for (i = 0; i < want && !is_closing(gs); i++)
        if (new_shard(gs, !gs->shared, &si) != 0)
            break;
    for (i = gs->nshards; i > first; i--) {      /* newest at the bottom */
        gs->shards[i - 1].listed = 1;
        gs->roomy[gs->nroomy++] = i - 1;
    }
}

/* ---- the set -------------------------------------------------------------- */

int mp_groupset_open(int family, unsigned short port, unsigned int ifindex,
                     unsigned int per_socket, int shared_receiver, mp_groupset_t **out)
{
    mp_groupset_t *gs;
    size_t receiver;
    int err;

    if (family != AF_INET && family != AF_INET6)
        return mp__fail(MP_WSAEAFNOSUPPORT);
    if (port == 0)
        return mp__fail(MP_WSAEADDRNOTAVAIL);
    if (per_socket == 0)
        return mp__fail(MP_WSAEINVAL);
    gs = calloc(1, sizeof(*gs));
    if (gs == NULL)
        return mp__fail(MP_WSAENOBUFS);
    if (mp_evset_open(NULL, &gs->events) < 0) {
        free(gs);
        return -1;
    }
    gs->family = family;
    gs->port = port;
    gs->ifindex = ifindex;
    gs->per_socket = per_socket;
    gs->shared = shared_receiver != 0;
    mp_mutex_init(&gs->lock);
    mp_mutex_init(&gs->flag_lock);
    if (gs->shared && (err = new_shard(gs, 1, &receiver)) != 0) {
        mp_groupset_close(gs);
        mp__restore_error(err);
        return -1;
    }
    if (gs->shared)
        gs->shards[0].listed = 1;               /* never among the roomy */
    *out = gs;
    return 0;
}

void mp_groupset_shutdown(mp_groupset_t *gs)
{
    if (gs == NULL)
        return;
    mp_mutex_lock(&gs->flag_lock);
    gs->closing = 1;
    mp_mutex_unlock(&gs->flag_lock);
}

/* Frees gs.  inherited: in a forked child, where the poller and the sockets
 * are the parent's too -- the child lets go of its copies of the
 * descriptors (the parent's memberships stay: the kernel drops them with
 * the last descriptor) and never touches the locks, which a parent thread
 * may have held at the fork. */
static void release(mp_groupset_t *gs, int inherited)
{
    size_t i;

    if (gs == NULL)
        return;
    if (inherited) {
        mp_evset_forget(gs->events);
    } else {
        mp_evset_close(gs->events);
    }
    /* Newest shard first: its memberships are the newest on the interface's
     * list, so each drop the kernel makes on close is found at once. */
    for (i = gs->nshards; i > 0; i--)
        mp__close(gs->shards[i - 1].sock);
    if (!inherited) {
        mp_mutex_destroy(&gs->lock);
        mp_mutex_destroy(&gs->flag_lock);
    }
    free(gs->shards);
    free(gs->roomy);
    free(gs->pending);
    free(gs->by_slot);
    free(gs->entries);
    free(gs->free_entries);
    free(gs->table);
    free(gs);
}

void mp_groupset_close(mp_groupset_t *gs)
{
    release(gs, 0);
}

void mp_groupset_forget(mp_groupset_t *gs)
{
    release(gs, 1);
}

/* Joins k (whose hash is h). */
static int join_one(mp_groupset_t *gs, const gkey_t *k, size_t h)
{
    mp_join_t req;
    size_t si = 0, index;
    int attempts;
    entry_t *e;

    if (k->family != gs->family)
        return code_of(MP_WSAEAFNOSUPPORT);
    if (lookup(gs, k, h) != MP_NO_ENTRY)
        return code_of(MP_WSAEISCONN);
    if (reserve_entries(gs, 1) < 0)
        return code_of(MP_WSAENOBUFS);
    request_of(gs, k, &req);
    for (attempts = 0;; attempts++) {
        int err = roomy_shard(gs, &si);
        if (err != 0)
            return err;
        if (mp__add_membership(gs->shards[si].sock, gs->family, &req) == 0)
            break;
        err = mp__last_error();
        /* ENOBUFS on a shard that holds some: the kernel's per-socket limit
         * is lower than per_socket.  That shard is full; try a fresh one. */
        if (gs->shards[si].count == 0 || attempts > 0 || err != code_of(MP_WSAENOBUFS))
            return err;
        gs->shards[si].capacity = gs->shards[si].count;
    }
    index = gs->nfree ? gs->free_entries[--gs->nfree] : gs->nentries++;
    e = &gs->entries[index];
    memset(e, 0, sizeof(*e));
    e->key = *k;
    e->shard = si;
    e->live = 1;
    e->order = gs->next_order++;
    e->st.joined_ns = mp__realtime_ns();
    insert(gs, index, h);
    gs->live++;
    gs->sourced += k->has_source;
    gs->shards[si].count++;
    return 0;
}

long mp_groupset_join(mp_groupset_t *gs, const mp_member_t *members, size_t n, int *results)
{
    long joined = 0;
    size_t i, h = n ? hash_key(&members[0]) : 0, next = 0;

    mp_mutex_lock(&gs->lock);
    if (!is_closing(gs)) {
        (void)reserve_entries(gs, n);   /* else join_one reserves one at a time */
        open_shards(gs, n);
    }
    for (i = 0; i < n && !is_closing(gs); i++, h = next) {
        if (i + 1 < n)
            prefetch_slot(gs, next = hash_key(&members[i + 1]));
        results[i] = join_one(gs, &members[i], h);
        joined += results[i] == 0;
    }
    if (i < n) {                        /* stopped by mp_groupset_shutdown */
        int stopped = code_of(MP_WSAENOTSOCK);
        for (; i < n; i++)
            results[i] = stopped;
    }
    mp_mutex_unlock(&gs->lock);
    return joined;
}

typedef struct {
    uint64_t order;
    size_t pos;                  /* table position */
    size_t index;                /* entry */
    size_t req;                  /* index into the caller's arrays */
} leave_t;

static int newest_first(const void *a, const void *b)
{
    uint64_t x = ((const leave_t *)a)->order, y = ((const leave_t *)b)->order;
    return x < y ? 1 : x > y ? -1 : 0;
}

#define MP_LEAVE_AHEAD 8

/* Orders todo newest first: a list given in join order (the usual case) is
 * reversed, one given newest first is kept, others are sorted. */
static void sort_newest_first(leave_t *todo, size_t m)
{
    size_t i, up = 1, down = 1;

    for (i = 1; i < m && (up || down); i++) {
        up &= todo[i - 1].order < todo[i].order;
        down &= todo[i - 1].order > todo[i].order;
    }
    if (down)
        return;
    if (up) {
        for (i = 0; i < m / 2; i++) {
            leave_t t = todo[i];
            todo[i] = todo[m - 1 - i];
            todo[m - 1 - i] = t;
        }
        return;
    }
    qsort(todo, m, sizeof(*todo), newest_first);
}

long mp_groupset_leave(mp_groupset_t *gs, const mp_member_t *members, size_t n, int *results)
{
    leave_t *todo = malloc((n ? n : 1) * sizeof(*todo));
    size_t i, m = 0;
    long left = 0;
    mp_join_t req;

    if (todo == NULL)
        return mp__fail(MP_WSAENOBUFS);
    mp_mutex_lock(&gs->lock);
    /* No system call between these lookups to hide a slot's loading behind,
     * so they are asked for further ahead than a join's. */
    for (i = 0; i < n; i++) {
        size_t pos;
        if (i + MP_LEAVE_AHEAD < n)
            prefetch_slot(gs, hash_key(&members[i + MP_LEAVE_AHEAD]));
        pos = find_pos(gs, &members[i]);
        if (pos == MP_NO_ENTRY) {
            results[i] = code_of(MP_WSAENOTCONN);
            continue;
        }
        todo[m].index = gs->table[pos].index;
        todo[m].order = gs->entries[todo[m].index].order;
        todo[m].pos = pos;
        todo[m].req = i;
        m++;
    }
    sort_newest_first(todo, m);
    for (i = 0; i < m && !is_closing(gs); i++) {
        size_t index = todo[i].index;
        entry_t *e = &gs->entries[index];
        shard_t *sh;
        if (!e->live) {                     /* named twice in members */
            results[todo[i].req] = code_of(MP_WSAENOTCONN);
            continue;
        }
        sh = &gs->shards[e->shard];
        request_of(gs, &e->key, &req);
        if (mp__drop_membership(sh->sock, gs->family, &req) < 0) {
            results[todo[i].req] = mp__last_error();
            continue;
        }
        results[todo[i].req] = 0;
        left++;
        e->live = 0;
        gs->sourced -= e->key.has_source;
        gs->table[todo[i].pos].index = MP_TOMBSTONE;
        gs->free_entries[gs->nfree++] = index;
        gs->live--;
        sh->count--;
        if (!sh->listed) {
            sh->listed = 1;
            gs->roomy[gs->nroomy++] = e->shard;
        }
    }
    if (i < m) {                            /* stopped by mp_groupset_shutdown */
        int stopped = code_of(MP_WSAENOTSOCK);
        for (; i < m; i++)
            results[todo[i].req] = stopped;
    }
    mp_mutex_unlock(&gs->lock);
    free(todo);
    return left;
}

size_t mp_groupset_size(mp_groupset_t *gs)
{
    size_t n;
    mp_mutex_lock(&gs->lock);
    n = gs->live;
    mp_mutex_unlock(&gs->lock);
    return n;
}

size_t mp_groupset_sockets(mp_groupset_t *gs)
{
    size_t n;
    mp_mutex_lock(&gs->lock);
    n = gs->nshards;
    mp_mutex_unlock(&gs->lock);
    return n;
}

static int oldest_first(const void *a, const void *b)
{
    uint64_t x = ((const leave_t *)a)->order, y = ((const leave_t *)b)->order;
    return x < y ? -1 : x > y ? 1 : 0;
}

size_t mp_groupset_list(mp_groupset_t *gs, mp_join_t *reqs, mp_group_stats_t *stats,
                        size_t max)
{
    leave_t *order;
    size_t i, m = 0;

    mp_mutex_lock(&gs->lock);
    order = malloc((gs->nentries ? gs->nentries : 1) * sizeof(*order));
    if (order != NULL) {
        for (i = 0; i < gs->nentries; i++) {
            if (gs->entries[i].live) {
                order[m].order = gs->entries[i].order;
                order[m].req = i;
                m++;
            }
        }
        qsort(order, m, sizeof(*order), oldest_first);
        if (m > max)
            m = max;
        for (i = 0; i < m; i++) {
            memset(&reqs[i], 0, sizeof(reqs[i]));
            request_of(gs, &gs->entries[order[i].req].key, &reqs[i]);
            stats[i] = gs->entries[order[i].req].st;
        }
        free(order);
    }
    mp_mutex_unlock(&gs->lock);
    return order == NULL ? 0 : m;
}

/* ---- receiving and statistics --------------------------------------------- */

static uint64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The sequence rules: a number above the highest leaves gaps for those in
 * between; one below it fills a gap (reordered) unless it was seen already
 * (duplicate).  Seen numbers are remembered 64 behind the highest; older
 * ones count as reordered. */
static void count_sequence(mp_group_stats_t *st, uint64_t seq)
{
    if (st->sequenced++ == 0) {
        st->highest = seq;
        st->window = 1;
    } else if (seq > st->highest) {
        uint64_t d = seq - st->highest;
        st->gaps += d - 1;
        st->window = d >= 64 ? 1 : (st->window << d) | 1;
        st->highest = seq;
    } else {
        uint64_t d = st->highest - seq;
        if (d < 64 && (st->window & (1ULL << d))) {
            st->duplicates++;
        } else {
            if (d < 64)
                st->window |= 1ULL << d;
            st->reordered++;
            if (st->gaps > 0)
                st->gaps--;
        }
    }
}

/* Whether shard si receives for e: its own members, or every member for
 * the shared receiver. */
static int owns(const mp_groupset_t *gs, const entry_t *e, size_t si)
{
    return e != NULL && (gs->shared || e->shard == si);
}

/* The membership of shard si that datagram i came to: the source-specific
 * one for its sender, else the any-source one; NULL when it belongs to no
 * membership that shard receives for (owns()) (left since it was queued, or cross-talk: a
 * stack that delivers a group to every socket on the port -- Linux with
 * IP_MULTICAST_ALL on, Wine, which cannot turn it off). */
static entry_t *owner(mp_groupset_t *gs, const mp_batch_t *b, size_t i, size_t si)
{
    gkey_t k;
    entry_t *e;

    if (gs->sourced != 0) {                     /* else no lookup can match */
        k = make_key(&b->groups[i], &b->sources[i]);
        e = find(gs, &k);
        if (owns(gs, e, si))
            return e;
    }
    k = make_key(&b->groups[i], NULL);
    e = find(gs, &k);
    return owns(gs, e, si) ? e : NULL;
}

/* Keeps, of the datagrams from index start on (all from shard si), those
 * that belong to one of its memberships (and those whose group is unknown),
 * moving them down over the dropped ones, and counts each in its member's
 * statistics. */
static void admit(mp_groupset_t *gs, mp_batch_t *b, size_t start, size_t si)
{
    int64_t now = 0;
    size_t i, kept = start;

    for (i = start; i < b->count; i++) {
        entry_t *e = NULL;
        int64_t t = b->timestamps[i];
        const unsigned char *data = b->data + i * b->max_size;

        if (b->groups[i].ss_family != 0 && (e = owner(gs, b, i, si)) == NULL)
            continue;                           /* not this shard's: dropped */
        if (kept != i) {
            memcpy(b->data + kept * b->max_size, data, b->sizes[i]);
            b->sizes[kept] = b->sizes[i];
            b->truncated[kept] = b->truncated[i];
            b->timestamps[kept] = b->timestamps[i];
            b->ifindex[kept] = b->ifindex[i];
            b->sources[kept] = b->sources[i];
            b->groups[kept] = b->groups[i];
            data = b->data + kept * b->max_size;
        }
        kept++;
        if (e == NULL)
            continue;
        if (t == 0)
            t = now ? now : (now = mp__realtime_ns());
        e->st.datagrams++;
        e->st.bytes += b->sizes[kept - 1];
        if (e->st.first_ns == 0)
            e->st.first_ns = t;
        e->st.last_ns = t;
        if (b->sizes[kept - 1] >= MP_SEQ_HEADER_SIZE && memcmp(data, MP_SEQ_MAGIC, 4) == 0)
            count_sequence(&e->st, be64(data + 4));
    }
    b->count = kept;
}

/* Drains readable shards into b, in the order they were reported.  A shard
 * that filled the batch may hold more: it goes to the back of the queue, so
 * a busy shard cannot starve the others. */
static void drain(mp_groupset_t *gs, mp_batch_t *b)
{
    while (gs->npending > 0 && b->count < b->max_datagrams) {
        size_t si = gs->pending[gs->head], start = b->count;
        shard_t *sh = &gs->shards[si];
        int n = mp_recv_batch_append(sh->sock, b);
        int full = n > 0 && start + (size_t)n == b->max_datagrams;   /* may hold more */

        if (n > 0)
            admit(gs, b, start, si);
        mp_evset_rearm(gs->events, sh->slot, MP_FD_READ);     /* a receive call */
        gs->head = (gs->head + 1) % gs->cap_shards;
        gs->npending--;
        if (full) {
            gs->pending[(gs->head + gs->npending) % gs->cap_shards] = si;
            gs->npending++;
        } else {
            sh->pending = 0;
        }
    }
}

int mp_groupset_recv(mp_groupset_t *gs, mp_batch_t *b, int timeout_ms)
{
    const mp_netevents_t *ev;
    int n, i;

    if (b == NULL || !b->metadata)
        return mp__fail(MP_WSAEINVAL);     /* the group comes from the metadata */
    if (is_closing(gs))
        return mp__fail(MP_WSAENOTSOCK);
    mp_mutex_lock(&gs->lock);
    b->count = 0;
    if (gs->npending == 0) {
        mp_evset_prepare(gs->events, &timeout_ms);
        mp_mutex_unlock(&gs->lock);
        n = mp_evset_poll(gs->events, timeout_ms);
        mp_mutex_lock(&gs->lock);
        if (n < 0) {
            mp_evset_end_wait(gs->events);
            mp_mutex_unlock(&gs->lock);        /* leaves the error code alone */
            return -1;
        }
        n = mp_evset_collect(gs->events, n, &ev);
        for (i = 0; i < n; i++) {
            size_t si = gs->by_slot[ev[i].slot];
            if (!gs->shards[si].pending) {
                gs->shards[si].pending = 1;
                gs->pending[(gs->head + gs->npending) % gs->cap_shards] = si;
                gs->npending++;
            }
        }
    }
    b->may_block = 0;          /* every shard is in the set's poller: non-blocking */
    drain(gs, b);
    mp_mutex_unlock(&gs->lock);
    return (int)b->count;
}
