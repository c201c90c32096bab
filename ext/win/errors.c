/* errors.c -- the Windows side of the error contract (mpoint.h): failures
 * are left in WSAGetLastError(), and validation failures, already named in
 * Winsock's numbers, are stored there unchanged.  Also Winsock's start-up.
 */
#include "win.h"

void mp__set_wsa_error(int wsa_code)
{
    WSASetLastError(wsa_code);
}

int mp__last_error(void)
{
    return WSAGetLastError();
}

void mp__restore_error(int code)
{
    WSASetLastError(code);
}

/* WSAEINTR: a blocking call cancelled (WSACancelBlockingCall in Winsock 1.1,
 * or a closesocket from another thread).  Signals never interrupt a Winsock
 * call: CPython runs its handlers on their own thread. */
int mp_error_is_interrupt(int code)
{
    return code == WSAEINTR;
}

int mp_error_is_would_block(int code)
{
    return code == WSAEWOULDBLOCK;
}

static INIT_ONCE startup_once = INIT_ONCE_STATIC_INIT;

/* InitOnceExecuteOnce runs this once at a time; a FALSE return leaves the
 * once unsignalled, so the next caller tries again. */
static BOOL CALLBACK startup(PINIT_ONCE once, PVOID param, PVOID *context)
{
    WSADATA data;
    int rc = WSAStartup(MAKEWORD(2, 2), &data);

    (void)once;
    (void)context;
    *(int *)param = rc;
    if (rc == 0 && (LOBYTE(data.wVersion) != 2 || HIBYTE(data.wVersion) != 2)) {
        WSACleanup();           /* balances this call's own WSAStartup only */
        *(int *)param = WSAVERNOTSUPPORTED;
    }
    return *(int *)param == 0;
}

int mp__win_startup(void)
{
    int rc = 0;

    /* WSAStartup reports its failure as its return value, not through
     * WSAGetLastError (which needs a started Winsock to mean anything). */
    if (!InitOnceExecuteOnce(&startup_once, startup, &rc, NULL)) {
        WSASetLastError(rc != 0 ? rc : WSASYSNOTREADY);
        return -1;
    }
    return 0;
}
