/* Prints the layout of Winsock's FLOWSPEC and QOS and the qos.h constants
 * as the real headers define them, one "name offset size" or "name value"
 * line each, for .ci/windows/check-qos-layout to compare with mpoint.qos.
 * Built with mingw-w64 and run under Wine; plain C, no CRT objects shared. */
#include <winsock2.h>
#include <qos.h>
#include <stddef.h>
#include <stdio.h>

#define FIELD(type, member) \
    printf("%s.%s %u %u\n", #type, #member, (unsigned)offsetof(type, member), \
           (unsigned)sizeof(((type *)0)->member))
#define CONSTANT(name) printf("const %s %lu\n", #name, (unsigned long)(name))

int main(void)
{
    printf("pointer_size %u\n", (unsigned)sizeof(void *));
    printf("FLOWSPEC 0 %u\n", (unsigned)sizeof(FLOWSPEC));
    FIELD(FLOWSPEC, TokenRate);
    FIELD(FLOWSPEC, TokenBucketSize);
    FIELD(FLOWSPEC, PeakBandwidth);
    FIELD(FLOWSPEC, Latency);
    FIELD(FLOWSPEC, DelayVariation);
    FIELD(FLOWSPEC, ServiceType);
    FIELD(FLOWSPEC, MaxSduSize);
    FIELD(FLOWSPEC, MinimumPolicedSize);
    printf("QOS 0 %u\n", (unsigned)sizeof(QOS));
    FIELD(QOS, SendingFlowspec);
    FIELD(QOS, ReceivingFlowspec);
    FIELD(QOS, ProviderSpecific);
    FIELD(QOS, ProviderSpecific.len);
    FIELD(QOS, ProviderSpecific.buf);
    CONSTANT(QOS_NOT_SPECIFIED);
    CONSTANT(POSITIVE_INFINITY_RATE);
    CONSTANT(SERVICETYPE_NOTRAFFIC);
    CONSTANT(SERVICETYPE_BESTEFFORT);
    CONSTANT(SERVICETYPE_CONTROLLEDLOAD);
    CONSTANT(SERVICETYPE_GUARANTEED);
    CONSTANT(SERVICETYPE_NETWORK_UNAVAILABLE);
    CONSTANT(SERVICETYPE_GENERAL_INFORMATION);
    CONSTANT(SERVICETYPE_NOCHANGE);
    CONSTANT(SERVICETYPE_NONCONFORMING);
    CONSTANT(SERVICETYPE_NETWORK_CONTROL);
    CONSTANT(SERVICETYPE_QUALITATIVE);
    CONSTANT(SERVICE_NO_TRAFFIC_CONTROL);
    CONSTANT(SERVICE_NO_QOS_SIGNALING);
    return 0;
}
