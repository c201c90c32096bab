/* port_sharing.c -- which options let every receiver of a UDP port bind it
 * (os_rules.h).  A receiver binds the wildcard address when it holds
 * several groups (GroupSet's shards) or replies by unicast (JL_BOTH), so
 * the rule must hold for any bind address, not only a multicast one. */
#include "os_rules.h"

unsigned int mp__port_sharing(int rule)
{
    switch (rule) {
    case MP_PORT_RULE_LINUX:
        /* SO_REUSEPORT is left off: on Linux it spreads unicast datagrams
         * over the sockets of a port (socket(7)) instead of sharing it. */
        return MP_SHARE_REUSEADDR;
    case MP_PORT_RULE_BSD:
        /* ip(4): with SO_REUSEPORT on every socket, a multicast datagram
         * reaches each of them, as SO_REUSEADDR gives for a multicast bind. */
        return MP_SHARE_REUSEADDR | MP_SHARE_REUSEPORT;
    default:
        return 0;
    }
}
