"""What XNU does where mpoint takes no side or cannot test without a Mac:
printed for the macOS job's log (.github/workflows/tests.yml), never
asserted.  Run on macOS only, after mpoint is installed; loopback only (lo0),
multicast scope 0.  README, "What is verified where", lists the questions.
"""
import errno
import select
import socket
import sys
import time

GROUP, OTHER = "239.255.15.1", "239.255.15.2"


def udp(reuseport: bool = False) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return s


def join(s: socket.socket, group: str) -> None:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton(group) + socket.inet_aton("127.0.0.1"))


def sender() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
    return s


def hears(s: socket.socket) -> bool:
    s.settimeout(0.5)
    try:
        s.recv(64)
        return True
    except socket.timeout:
        return False


def say(question: str, answer: object) -> None:
    print(f"observed: {question}: {answer}")


def second_wildcard_bind(reuseport: bool) -> str:
    a, b = udp(reuseport), udp(reuseport)
    with a, b:
        a.bind(("0.0.0.0", 0))
        try:
            b.bind(("0.0.0.0", a.getsockname()[1]))
            return "bound"
        except OSError as exc:
            return errno.errorcode.get(exc.errno or 0, str(exc))


def who_hears_a_group() -> None:
    joined, bare, other = udp(True), udp(True), udp(True)
    with joined, bare, other, sender() as tx:
        joined.bind(("0.0.0.0", 0))
        port = joined.getsockname()[1]
        bare.bind(("0.0.0.0", port))
        other.bind(("0.0.0.0", port))
        join(joined, GROUP)
        join(other, OTHER)
        tx.sendto(b"x", (GROUP, port))
        say("the socket that joined the group hears it", hears(joined))
        say("a socket bound to the port with no membership hears it", hears(bare))
        say("a socket with a membership in another group hears it", hears(other))


def close_only_filter() -> None:
    rx, tx = udp(True), sender()
    with rx, tx:
        rx.bind(("0.0.0.0", 0))
        port = rx.getsockname()[1]
        join(rx, GROUP)
        tx.sendto(b"waits", (GROUP, port))
        time.sleep(0.1)
        kq = select.kqueue()
        ev = select.kevent(rx.fileno(), select.KQ_FILTER_READ,
                           select.KQ_EV_ADD | select.KQ_EV_CLEAR, select.KQ_NOTE_LOWAT, 0x7fffffff)
        kq.control([ev], 0)
        wakes, end = 0, time.monotonic() + 0.5
        while time.monotonic() < end:
            wakes += len(kq.control(None, 4, 0.1))
        say("EV_CLEAR|NOTE_LOWAT read filter: wake-ups in 0.5 s with a datagram waiting", wakes)
        rx.shutdown(socket.SHUT_RD)
        got = kq.control(None, 4, 1)
        say("after shutdown(SHUT_RD): flags, fflags",
            [(hex(e.flags), e.fflags) for e in got] or "no event")
        kq.close()


def refused() -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()
    closed.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(dead)
        kq = select.kqueue()
        kq.control([select.kevent(s.fileno(), select.KQ_FILTER_READ, select.KQ_EV_ADD)], 0)
        s.send(b"anyone?")
        got = kq.control(None, 4, 1)
        say("port unreachable on a connected socket: read kevent (flags, fflags, data)",
            [(hex(e.flags), e.fflags, e.data) for e in got] or "no event")
        say("SO_ERROR then", errno.errorcode.get(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR),
                                                  "0"))
        kq.close()


def membership_cap() -> None:
    with udp(True) as s:
        s.bind(("0.0.0.0", 0))
        for i in range(5000):
            try:
                join(s, f"239.{200 + i // 65536}.{i // 256 % 256}.{i % 256}")
            except OSError as exc:
                say("memberships one socket took, and the refusal",
                    (i, errno.errorcode.get(exc.errno or 0, str(exc))))
                return
        say("memberships one socket took", "5000, no refusal")


def main() -> int:
    if sys.platform != "darwin":
        print("macOS only")
        return 2
    say("second wildcard bind of a port, SO_REUSEADDR alone", second_wildcard_bind(False))
    say("second wildcard bind of a port, SO_REUSEADDR + SO_REUSEPORT", second_wildcard_bind(True))
    who_hears_a_group()
    close_only_filter()
    refused()
    membership_cap()
    return 0


if __name__ == "__main__":
    sys.exit(main())
