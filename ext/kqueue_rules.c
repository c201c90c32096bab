/* kqueue_rules.c -- the kqueue poller's decisions (os_rules.h), apart from
 * kevent(2) so that the Linux suite tests them: which knotes a watch needs,
 * and what one kevent reports. */
#include "os_rules.h"
#include "poller.h"

/* What the read filter must be for watch bits w. */
static int read_mode(unsigned int w)
{
    if (w & MP_POLL_IN)
        return MP_KQ_ADD_LEVEL;
    if (w & MP_POLL_HUP)
        return MP_KQ_ADD_CLOSE;     /* close-only: readability must not wake it */
    return -1;                      /* no read filter */
}

int mp__kq_plan(unsigned int before, unsigned int after, mp_kq_change_t out[MP_KQ_MAX_CHANGES])
{
    int rb = read_mode(before), ra = read_mode(after), n = 0;
    unsigned int wb = before & MP_POLL_OUT, wa = after & MP_POLL_OUT;

    if (rb != ra) {
        if (rb >= 0) {
            out[n].filter = MP_KQ_READ;
            out[n++].action = MP_KQ_DELETE;
        }
        if (ra >= 0) {
            out[n].filter = MP_KQ_READ;
            out[n++].action = ra;
        }
    }
    if (wb != wa) {
        out[n].filter = MP_KQ_WRITE;
        out[n++].action = wa ? MP_KQ_ADD_LEVEL : MP_KQ_DELETE;
    }
    return n;
}

unsigned int mp__kq_report(const mp_kq_event_t *e, int *error)
{
    unsigned int what = e->filter == MP_KQ_READ ? MP_POLL_IN : MP_POLL_OUT;

    *error = 0;
    if (e->flags & MP_KQ_ERROR) {
        *error = (int)e->data;
        return MP_POLL_ERR;
    }
    if (e->flags & MP_KQ_EOF) {
        if (e->filter == MP_KQ_READ)
            what |= MP_POLL_HUP;
        if (e->fflags != 0) {
            what |= MP_POLL_ERR;
            *error = (int)e->fflags;
        }
    } else if (e->filter == MP_KQ_READ && e->data == 0) {
        what |= MP_POLL_ERR;
    }
    return what;
}
