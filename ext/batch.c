/* batch.c -- batch receive (mpoint.h, "batch receive"): the batch's memory
 * and the argument checks, shared by every platform; then one call into the
 * platform's batch file (batch_platform.h).
 */
#include <stdint.h>
#include <stdlib.h>

#include "batch_platform.h"
#include "mp_platform.h"

/* The largest max_datagrams and max_size: 65536 bytes holds any UDP
 * payload (at most 65535 bytes, RFC 768; jumbograms aside). */
#define MP_BATCH_LIMIT 65536u

void mp_batch_free(mp_batch_t *batch)
{
    if (batch == NULL)
        return;
    mp__batch_platform_free(batch);
    free(batch->data);
    free(batch->sizes);
    free(batch->truncated);
    free(batch->timestamps);
    free(batch->ifindex);
    free(batch->sources);
    free(batch->groups);
    free(batch);
}

int mp_batch_new(size_t max_datagrams, size_t max_size, int metadata, mp_batch_t **out)
{
    mp_batch_t *b;
    size_t n = max_datagrams;

    if (out == NULL)
        return mp__fail(MP_WSAEFAULT);
    *out = NULL;
    if (n < 1 || n > MP_BATCH_LIMIT || max_size < 1 || max_size > MP_BATCH_LIMIT)
        return mp__fail(MP_WSAEINVAL);
    /* The data area is n * max_size bytes: at most MP_BATCH_MAX_AREA, so a
     * pair of large arguments is a clear refusal, not a 4 GiB allocation. */
    if (n > MP_BATCH_MAX_AREA / max_size)
        return mp__fail(MP_WSAEINVAL);
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return mp__fail(MP_WSAENOBUFS);
    b->max_datagrams = n;
    b->max_size = max_size;
    b->metadata = metadata != 0;
    b->may_block = 1;
    /* Zeroed: metadata that never arrives reads as "unknown". */
    b->data = calloc(n, max_size);
    b->sizes = calloc(n, sizeof(*b->sizes));
    b->truncated = calloc(n, sizeof(*b->truncated));
    b->timestamps = calloc(n, sizeof(*b->timestamps));
    b->ifindex = calloc(n, sizeof(*b->ifindex));
    b->sources = calloc(n, sizeof(*b->sources));
    b->groups = calloc(n, sizeof(*b->groups));
    if (b->data == NULL || b->sizes == NULL || b->truncated == NULL ||
        b->timestamps == NULL || b->ifindex == NULL || b->sources == NULL ||
        b->groups == NULL || mp__batch_platform_new(b) < 0) {
        mp_batch_free(b);
        return mp__fail(MP_WSAENOBUFS);
    }
    *out = b;
    return 0;
}

int mp_enable_metadata(mp_sock_t s, int family)
{
    if (s == MP_INVALID_SOCKET)
        return mp__fail(MP_WSAENOTSOCK);
    if (family != AF_INET && family != AF_INET6)
        return mp__fail(MP_WSAEAFNOSUPPORT);
    return mp__batch_enable_metadata(s, family);
}

int mp_recv_batch(mp_sock_t s, mp_batch_t *batch)
{
    if (batch == NULL)
        return mp__fail(MP_WSAEFAULT);
    batch->count = 0;           /* a failed receive shows no stale datagrams */
    if (s == MP_INVALID_SOCKET)
        return mp__fail(MP_WSAENOTSOCK);
    return mp__batch_recv(s, batch);
}

int mp_recv_batch_append(mp_sock_t s, mp_batch_t *batch)
{
    if (batch == NULL)
        return mp__fail(MP_WSAEFAULT);
    if (s == MP_INVALID_SOCKET)
        return mp__fail(MP_WSAENOTSOCK);
    if (batch->count >= batch->max_datagrams)
        return 0;                       /* full: nothing to add */
    return mp__batch_recv(s, batch);
}

int mp_wait_readable(mp_sock_t s, int timeout_ms)
{
    if (s == MP_INVALID_SOCKET)
        return mp__fail(MP_WSAENOTSOCK);
    if (timeout_ms < -1)
        return mp__fail(MP_WSAEINVAL);
    return mp__batch_wait_readable(s, timeout_ms);
}
