/* shaper.c -- the send path's token bucket (mpoint.h, "token bucket"):
 * IntServ's TSpec (RFC 2210 3.1, RFC 2215 3.6) as a shaper, in exact
 * integer arithmetic.  Portable: time comes from the caller.
 *
 * Units: tokens are nano-bytes, so that t ns at r bytes/s are exactly
 * t * r tokens and a datagram of c bytes costs c * 1e9.  With every
 * parameter at most MP_SHAPER_MAX (2^32 - 1), a full bucket is below
 * 2^32 * 1e9 < 2^62, and refill() never multiplies an elapsed time larger
 * than what fills the bucket: nothing overflows and nothing is lost.
 */
#include <stdint.h>

#include "mp_platform.h"

#define NANO 1000000000ull

/* What a datagram of len bytes counts as, in bytes (RFC 2210: "any IP
 * datagram less than size m will be counted as being of size m"). */
static uint64_t counted(const mp_shaper_t *sh, size_t len)
{
    uint64_t c = (uint64_t)len;

    return c < sh->min_policed ? sh->min_policed : c;
}

/* The peak bucket's depth for a datagram counted as c bytes, nano-bytes:
 * max_sdu (the TSpec's M), or without one the datagram itself. */
static uint64_t peak_depth(const mp_shaper_t *sh, uint64_t c)
{
    return (sh->max_sdu ? sh->max_sdu : c) * NANO;
}

/* tokens + elapsed * rate, at most cap, without overflow. */
static uint64_t accrue(uint64_t tokens, uint64_t elapsed, uint64_t rate, uint64_t cap)
{
    uint64_t room;

    if (tokens >= cap)
        return cap;
    room = cap - tokens;
    if (rate == 0 || elapsed <= room / rate)
        return tokens + elapsed * rate;        /* <= cap */
    return cap;
}

/* Brings both buckets to now_ns.  The peak bucket accrues up to the
 * largest depth it may have (max_sdu, or without one MP_SHAPER_MAX bytes);
 * take() cuts it to the datagram at hand. */
static void refill(mp_shaper_t *sh, uint64_t now_ns)
{
    uint64_t elapsed;

    if (now_ns <= sh->last_ns)
        return;                                /* no time passed (or the clock is not ours) */
    elapsed = now_ns - sh->last_ns;
    sh->last_ns = now_ns;
    if (sh->token_rate)
        sh->tokens = accrue(sh->tokens, elapsed, sh->token_rate, sh->bucket * NANO);
    if (sh->peak)
        sh->peak_tokens = accrue(sh->peak_tokens, elapsed, sh->peak,
                                 (sh->max_sdu ? sh->max_sdu : MP_SHAPER_MAX) * NANO);
}

int mp_shaper_set(mp_shaper_t *sh, uint64_t token_rate, uint64_t bucket, uint64_t peak,
                  uint64_t min_policed, uint64_t max_sdu, uint64_t now_ns)
{
    if (sh == NULL)
        return mp__fail(MP_WSAEFAULT);
    if (token_rate > MP_SHAPER_MAX || bucket > MP_SHAPER_MAX || peak > MP_SHAPER_MAX ||
        min_policed > MP_SHAPER_MAX || max_sdu > MP_SHAPER_MAX)
        return mp__fail(MP_WSAEINVAL);
    if (token_rate && (bucket == 0 || bucket < min_policed || bucket < max_sdu))
        return mp__fail(MP_WSAEINVAL);         /* no datagram (or not every one) could pass */
    if (peak && token_rate && peak < token_rate)
        return mp__fail(MP_WSAEINVAL);
    if (max_sdu && min_policed > max_sdu)
        return mp__fail(MP_WSAEINVAL);
    sh->token_rate = token_rate;
    sh->bucket = bucket;
    sh->peak = peak;
    sh->min_policed = min_policed;
    sh->max_sdu = max_sdu;
    sh->tokens = bucket * NANO;                /* a full bucket at the start */
    sh->peak_tokens = (max_sdu ? max_sdu : MP_SHAPER_MAX) * NANO;
    sh->last_ns = now_ns;
    return 0;
}

int mp_shaper_check(const mp_shaper_t *sh, size_t len)
{
    if (sh->max_sdu && (uint64_t)len > sh->max_sdu)
        return mp__fail(MP_WSAEMSGSIZE);
    if (sh->token_rate && ((uint64_t)len > MP_SHAPER_MAX || counted(sh, len) > sh->bucket))
        return mp__fail(MP_WSAEMSGSIZE);
    return 0;
}

/* ceil(deficit / rate) ns, at least 1. */
static uint64_t wait_for(uint64_t deficit, uint64_t rate)
{
    uint64_t w = deficit / rate + (deficit % rate != 0);

    return w ? w : 1;
}

uint64_t mp_shaper_take(mp_shaper_t *sh, size_t len, uint64_t now_ns)
{
    uint64_t c, cost, wait = 0, ptok = 0, w;

    if ((sh->max_sdu && (uint64_t)len > sh->max_sdu) || (uint64_t)len > MP_SHAPER_MAX ||
        (sh->token_rate && counted(sh, len) > sh->bucket))
        return UINT64_MAX;                     /* never conforms: mp_shaper_check says so */
    refill(sh, now_ns);
    c = counted(sh, len);
    cost = c * NANO;
    if (sh->token_rate && sh->tokens < cost)
        wait = wait_for(cost - sh->tokens, sh->token_rate);
    if (sh->peak) {
        uint64_t depth = peak_depth(sh, c);
        ptok = sh->peak_tokens < depth ? sh->peak_tokens : depth;
        if (ptok < cost) {
            w = wait_for(cost - ptok, sh->peak);
            wait = w > wait ? w : wait;
        }
    }
    if (wait)
        return wait;
    if (sh->token_rate)
        sh->tokens -= cost;
    if (sh->peak)
        sh->peak_tokens = ptok - cost;
    return 0;
}

void mp_shaper_refund(mp_shaper_t *sh, size_t len)
{
    uint64_t cost, cap;

    if ((uint64_t)len > MP_SHAPER_MAX)
        return;
    cost = counted(sh, len) * NANO;
    if (sh->token_rate) {
        cap = sh->bucket * NANO;
        sh->tokens = cap - sh->tokens <= cost ? cap : sh->tokens + cost;
    }
    if (sh->peak) {
        cap = (sh->max_sdu ? sh->max_sdu : MP_SHAPER_MAX) * NANO;
        sh->peak_tokens = cap - sh->peak_tokens <= cost ? cap : sh->peak_tokens + cost;
    }
}
