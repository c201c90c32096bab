/* qos.c -- QoS marks on Windows.  Windows ignores IP_TOS from applications
 * (the RSVP-based GQoS that honoured flowspecs is gone since Vista), so
 * the DS field is set through qWAVE (qos2.h: QOSCreateHandle,
 * QOSAddSocketToFlow, QOSSetFlow), loaded at run time: a system without
 * qwave.dll (Server Core, Wine's stub) marks nothing, and mp__qos_supported
 * says so.  The receive buffer is SO_RCVBUF, as on POSIX.  mpoint's token
 * bucket (shaper.c) shapes on every platform, so qWAVE's own shaping
 * (QOSSetOutgoingRate) is not asked for. */
#include "win.h"

/* qos2.h's names, spelled here: MinGW-w64's qos2.h does not declare
 * QOS_FLOWID, and qwave.lib is not linked (the DLL is loaded when asked). */
typedef UINT32 QOS_FLOWID, *PQOS_FLOWID;
typedef struct { USHORT MajorVersion; USHORT MinorVersion; } QOS_VERSION, *PQOS_VERSION;
typedef enum {
    QOSTrafficTypeBestEffort, QOSTrafficTypeBackground, QOSTrafficTypeExcellentEffort,
    QOSTrafficTypeAudioVideo, QOSTrafficTypeVoice, QOSTrafficTypeControl
} QOS_TRAFFIC_TYPE;
typedef enum { QOSSetTrafficType = 0, QOSSetOutgoingRate = 1, QOSSetOutgoingDSCPValue = 2 }
    QOS_SET_FLOW;
#define QOS_NON_ADAPTIVE_FLOW 0x00000002

typedef BOOL (WINAPI *create_fn)(PQOS_VERSION, PHANDLE);
typedef BOOL (WINAPI *add_fn)(HANDLE, SOCKET, PSOCKADDR, QOS_TRAFFIC_TYPE, DWORD, PQOS_FLOWID);
typedef BOOL (WINAPI *set_fn)(HANDLE, QOS_FLOWID, QOS_SET_FLOW, ULONG, PVOID, DWORD,
                              LPOVERLAPPED);
typedef BOOL (WINAPI *remove_fn)(HANDLE, SOCKET, QOS_FLOWID, DWORD);

/* One qWAVE handle per process, made on first use and never closed (the
 * sockets in its flows may outlive any caller). */
static struct {
    INIT_ONCE once;
    HANDLE handle;
    add_fn add;
    set_fn set;
    remove_fn remove;
} qwave = {INIT_ONCE_STATIC_INIT, NULL, NULL, NULL, NULL};

static BOOL CALLBACK qwave_load(PINIT_ONCE once, PVOID arg, PVOID *ctx)
{
    HMODULE dll = LoadLibraryExW(L"qwave.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);
    QOS_VERSION version = {1, 0};
    create_fn create;

    (void)once;
    (void)arg;
    (void)ctx;
    if (dll == NULL)
        return TRUE;
    create = (create_fn)(void (*)(void))GetProcAddress(dll, "QOSCreateHandle");
    qwave.add = (add_fn)(void (*)(void))GetProcAddress(dll, "QOSAddSocketToFlow");
    qwave.set = (set_fn)(void (*)(void))GetProcAddress(dll, "QOSSetFlow");
    qwave.remove = (remove_fn)(void (*)(void))GetProcAddress(dll, "QOSRemoveSocketFromFlow");
    if (create == NULL || qwave.add == NULL || qwave.set == NULL || qwave.remove == NULL ||
        !create(&version, &qwave.handle))
        qwave.handle = NULL;
    return TRUE;
}

static HANDLE qwave_handle(void)
{
    InitOnceExecuteOnce(&qwave.once, qwave_load, NULL, NULL);
    return qwave.handle;
}

unsigned int mp__qos_supported(void)
{
    return MP_QOS_RCVBUF | (qwave_handle() != NULL ? MP_QOS_DSCP : 0u);
}

/* The qWAVE traffic type whose own DSCP (set without administrator rights)
 * is dscp: BestEffort 0, Background 8, AudioVideo 40, Voice and Control 56
 * (learn.microsoft.com, "QOS_TRAFFIC_TYPE"); another value needs
 * QOSSetOutgoingDSCPValue, which Windows allows administrators only. */
static QOS_TRAFFIC_TYPE traffic_type(int dscp, int *exact)
{
    *exact = 1;
    switch (dscp) {
    case 8:  return QOSTrafficTypeBackground;
    case 40: return QOSTrafficTypeAudioVideo;
    case 56: return QOSTrafficTypeVoice;
    case 0:  return QOSTrafficTypeBestEffort;
    default: *exact = 0; return QOSTrafficTypeBestEffort;
    }
}

static int fail_win32(DWORD code)
{
    WSASetLastError(code == ERROR_ACCESS_DENIED ? WSAEACCES : WSAEOPNOTSUPP);
    return -1;
}

static int mark(SOCKET s, mp_qos_kernel_t *k)
{
    HANDLE h = qwave_handle();
    QOS_FLOWID flow = k->flow;
    DWORD value = (DWORD)k->dscp;
    int exact;
    QOS_TRAFFIC_TYPE type = traffic_type(k->dscp, &exact);

    if (flow == 0 && k->dscp == 0)
        return 0;               /* unmarked, as every socket starts */
    if (flow != 0) {
        if (!qwave.set(h, flow, QOSSetTrafficType, sizeof(type), &type, 0, NULL))
            return fail_win32(GetLastError());
    } else {
        /* qWAVE needs the flow's destination for an unconnected socket. */
        if (k->dest == NULL) {
            WSASetLastError(WSAEDESTADDRREQ);
            return -1;
        }
        if (!qwave.add(h, s, (PSOCKADDR)k->dest, type, QOS_NON_ADAPTIVE_FLOW, &flow))
            return fail_win32(GetLastError());
        k->flow = flow;
    }
    if (!exact && !qwave.set(h, flow, QOSSetOutgoingDSCPValue, sizeof(value), &value, 0, NULL))
        return fail_win32(GetLastError());
    return 0;
}

int mp__qos_apply(mp_sock_t s, int family, mp_qos_kernel_t *k)
{
    int size, now = 0, len = (int)sizeof(now);

    (void)family;
    if (k->dscp >= 0 && mark((SOCKET)s, k) < 0)
        return -1;
    /* The buffer only grows (Windows reports the value as set). */
    if (k->rcvbuf != 0) {
        if (getsockopt((SOCKET)s, SOL_SOCKET, SO_RCVBUF, (char *)&now, &len) == SOCKET_ERROR)
            return -1;
        size = (int)k->rcvbuf;
        if (size > now &&
            setsockopt((SOCKET)s, SOL_SOCKET, SO_RCVBUF, (const char *)&size, sizeof(size)) ==
            SOCKET_ERROR)
            return -1;
    }
    return 0;
}

void mp__qos_forget(mp_sock_t s, uint32_t flow)
{
    if (qwave_handle() != NULL)
        qwave.remove(qwave.handle, (SOCKET)s, (QOS_FLOWID)flow, 0);
}
