/* errors.c -- the POSIX side of the error contract (mpoint.h): failures are
 * left in errno; validation failures name a Winsock code, stored here as the
 * errno that Python's OSError maps back to the same condition. */
#include <errno.h>

#include "posix.h"

void mp__set_wsa_error(int wsa_code)
{
    static const struct { int wsa; int posix; } table[] = {
        {MP_WSAEFAULT, EFAULT},
        {MP_WSAEINVAL, EINVAL},
        {MP_WSAEALREADY, EALREADY},
        {MP_WSAENOTSOCK, ENOTSOCK},
        {MP_WSAEPROTONOSUPPORT, EPROTONOSUPPORT},
        {MP_WSAESOCKTNOSUPPORT, ESOCKTNOSUPPORT},
        {MP_WSAEOPNOTSUPP, EOPNOTSUPP},
        {MP_WSAEAFNOSUPPORT, EAFNOSUPPORT},
        {MP_WSAEADDRNOTAVAIL, EADDRNOTAVAIL},
        {MP_WSAEISCONN, EISCONN},
        {MP_WSAENOTCONN, ENOTCONN},
        {MP_WSAENOBUFS, ENOBUFS},
        {MP_WSAECONNABORTED, ECONNABORTED},
        {MP_WSAEMSGSIZE, EMSGSIZE},
    };
    size_t i;

    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].wsa == wsa_code) {
            errno = table[i].posix;
            return;
        }
    }
    errno = EINVAL;   /* unreachable for the codes mpoint.h defines */
}

int mp__last_error(void)
{
    return errno;
}

void mp__restore_error(int code)
{
    errno = code;
}

int mp_error_is_interrupt(int code)
{
    return code == EINTR;
}

int mp_error_is_would_block(int code)
{
    return code == EAGAIN || code == EWOULDBLOCK;
}
