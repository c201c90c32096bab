"""Reads what the router tests captured (tcpdump -w, classic pcap, Ethernet):
IGMPv3 (RFC 3376 4.1, 4.2) and MLDv2 (RFC 3810 5.1, 5.2) queries and reports,
and UDP datagrams.  A test helper, not part of the library: the tests judge the
wire with it, so it decodes only what they assert on and rejects nothing."""
from __future__ import annotations

import ipaddress
import struct
from typing import List, NamedTuple, Optional, Tuple

# Group record types, the same numbers in IGMPv3 and MLDv2 (RFC 3376 4.2.12,
# RFC 3810 5.2.12), by the names the RFCs' state tables use.
RECORD_NAMES = {1: "IS_IN", 2: "IS_EX", 3: "TO_IN", 4: "TO_EX", 5: "ALLOW", 6: "BLOCK"}

_IGMP_V3_REPORT = 0x22
_IGMP_QUERY = 0x11
_MLD_QUERY, _MLD_V2_REPORT = 130, 143
_EXT_HEADERS = (0, 43, 60)          # hop-by-hop, routing, destination options


class Record(NamedTuple):
    kind: str                       # "IS_IN" ... "BLOCK"
    group: str
    sources: Tuple[str, ...]


class Packet(NamedTuple):
    time: float                     # capture timestamp, seconds since the epoch
    kind: str                       # "report", "query", "udp", "other"
    src: str
    dst: str
    records: Tuple[Record, ...] = ()    # reports: group records
    version: int = 0                # queries: 2 or 3 (IGMP), 1 or 2 (MLD)
    group: str = ""                 # queries: the group asked about ("" general)
    dport: int = 0                  # udp
    payload: bytes = b""            # udp
    hops: int = 0                   # IPv4 TTL / IPv6 hop limit


def read_pcap(path: str) -> List[Packet]:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    if linktype != 1:
        raise ValueError(f"{path}: link type {linktype}, not Ethernet")
    out: List[Packet] = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack_from(endian + "IIII", data, off)
        frame = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        packet = _ethernet(sec + frac / (1e9 if nano else 1e6), frame)
        if packet is not None:
            out.append(packet)
    return out


def _ethernet(t: float, frame: bytes) -> Optional[Packet]:
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == 0x0800:
        return _ipv4(t, frame[14:])
    if ethertype == 0x86DD:
        return _ipv6(t, frame[14:])
    return None


def _ipv4(t: float, ip: bytes) -> Optional[Packet]:
    if len(ip) < 20:
        return None
    ihl = (ip[0] & 0x0F) * 4
    ttl, proto = ip[8], ip[9]
    src, dst = str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20]))
    body = ip[ihl:struct.unpack_from("!H", ip, 2)[0]]
    if proto == 2 and body:
        if body[0] == _IGMP_V3_REPORT and len(body) >= 8:
            return Packet(t, "report", src, dst, _records(body, 6, 8, 4), hops=ttl)
        if body[0] == _IGMP_QUERY and len(body) >= 8:
            version = 3 if len(body) >= 12 else 2
            return Packet(t, "query", src, dst, version=version,
                          group=_group(ipaddress.IPv4Address(body[4:8])), hops=ttl)
    if proto == 17 and len(body) >= 8:
        return Packet(t, "udp", src, dst, dport=struct.unpack_from("!H", body, 2)[0],
                      payload=body[8:], hops=ttl)
    return Packet(t, "other", src, dst, hops=ttl)


def _ipv6(t: float, ip: bytes) -> Optional[Packet]:
    if len(ip) < 40:
        return None
    nxt, hops = ip[6], ip[7]
    src, dst = str(ipaddress.IPv6Address(ip[8:24])), str(ipaddress.IPv6Address(ip[24:40]))
    body = ip[40:40 + struct.unpack_from("!H", ip, 4)[0]]
    # MLD comes after a hop-by-hop header (router alert): walk the extension headers.
    for _ in range(8):
        if nxt not in _EXT_HEADERS or len(body) < 8:
            break
        nxt, body = body[0], body[(body[1] + 1) * 8:]
    if nxt == 58 and body:
        if body[0] == _MLD_V2_REPORT and len(body) >= 8:
            return Packet(t, "report", src, dst, _records(body, 6, 8, 16), hops=hops)
        if body[0] == _MLD_QUERY and len(body) >= 24:
            version = 2 if len(body) >= 28 else 1
            return Packet(t, "query", src, dst, version=version,
                          group=_group(ipaddress.IPv6Address(body[8:24])), hops=hops)
    if nxt == 17 and len(body) >= 8:
        return Packet(t, "udp", src, dst, dport=struct.unpack_from("!H", body, 2)[0],
                      payload=body[8:], hops=hops)
    return Packet(t, "other", src, dst, hops=hops)


def _group(addr: "ipaddress._BaseAddress") -> str:
    return "" if int(addr) == 0 else str(addr)


def _records(body: bytes, count_at: int, first: int, alen: int) -> Tuple[Record, ...]:
    """Group records: type, aux length (32-bit words), source count, group, sources."""
    count = struct.unpack_from("!H", body, count_at)[0]
    make = ipaddress.IPv4Address if alen == 4 else ipaddress.IPv6Address
    out: List[Record] = []
    off = first
    for _ in range(count):
        if off + 4 + alen > len(body):
            break
        rtype, aux, nsrc = struct.unpack_from("!BBH", body, off)
        group = str(make(body[off + 4:off + 4 + alen]))
        srcs = tuple(str(make(body[off + 4 + alen * (i + 1):off + 4 + alen * (i + 2)]))
                     for i in range(nsrc))
        out.append(Record(RECORD_NAMES.get(rtype, str(rtype)), group, srcs))
        off += 4 + alen * (nsrc + 1) + aux * 4
    return tuple(out)


def records_for(packets: List[Packet], group: str, src: Optional[str] = None
                ) -> List[Tuple[float, Record]]:
    """(time, record) of every report record about ``group`` (from ``src``)."""
    return [(p.time, r) for p in packets if p.kind == "report"
            and (src is None or p.src == src) for r in p.records if r.group == group]


def datagrams_to(packets: List[Packet], group: str, port: int) -> List[Packet]:
    return [p for p in packets if p.kind == "udp" and p.dst == group and p.dport == port]
