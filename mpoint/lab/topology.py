"""A real multicast network on one machine: hosts, a snooping bridge and a router,
each in a network namespace this module creates (never the caller's, never the host's).

```
 subnet A 192.0.2.0/24, 2001:db8:a::/64                 subnet B 198.51.100.0/24, 2001:db8:b::/64
 [rx1] eth0 .11 -+
                 +- [swa] br0 (IGMP/MLD snooping) - eth-a .1 [rtr] eth-b .1 --- eth0 .10 [tx]
 [rx2] eth0 .12 -+
```

The bridge snoops IGMPv3 and MLDv2 (RFC 4541) and is the querier (query
response 1 s, last-member query interval 1 s, count 2): it delivers a group to
a host's port only after that host's report, and after a leave it asks twice
and stops.  What forwards from B to A in ``rtr`` depends on the kernel
(``plan()``):

* where it routes multicast (CONFIG_IP_MROUTE, CONFIG_IPV6_MROUTE): IPv4 FRR's
  pimd (PIM-SM, its own RP, IGMPv3 querier on eth-a: it wins the querier
  election against the bridge's higher address), which forwards into A only
  after a report there, SSM for 232/8; IPv6 smcroute's static (*,G) routes for
  ff15::/16 and ff35::/16 (Debian has no membership-driven IPv6 router).
  Not exercised on the machine this was written on, whose kernel lacks both.
* otherwise: an nftables ingress rule (_start_nft_forwarding) forwards
  routable-scope multicast with a TTL / hop limit above 1, decrementing it,
  and the bridge alone decides who gets it.

Two ways to own the namespaces, chosen by ``Topology(persistent=...)``:

* ``persistent=True`` as root in the initial user namespace (``python -m mpoint
  lab up``): plain ``ip netns`` names (``PREFIX-rx1`` ...) that outlive the
  command, so a person can ``ip netns exec PREFIX-rx1 ...``; ``down`` removes them.
* otherwise (the tests, and rootless): a *holder* process with a mount
  namespace of its own (and a user namespace when the caller lacks
  CAP_SYS_ADMIN) mounts a private ``/run``; ``ip netns`` runs inside it, so
  no name, mount or file appears in the host's ``/run``.  Every process the
  lab starts gets PR_SET_PDEATHSIG(SIGKILL) unless it must outlive us: a
  test run killed hard still leaves no daemon behind, and the namespaces go
  away with their last process.

Every lab process (daemons, captures, workers) is killed on ``down()``,
found by ``ip netns pids`` so that nothing it forked survives either.
``with Topology() as lab:`` tears down on any exception; an atexit hook and a
SIGTERM/SIGHUP handler cover interrupts.  What cannot be built raises
``LabError`` whose message says why (tests turn it into a skip).
"""
from __future__ import annotations

import atexit
import ctypes
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["LabError", "Host", "Topology", "Worker", "HOSTS", "missing_tools", "state_dir"]

# Hosts: name -> (subnet-facing addresses).  Documentation ranges only (RFC 5737, RFC 3849).
HOSTS = ("rx1", "rx2", "swa", "rtr", "tx")
ADDR4 = {"rx1": "192.0.2.11", "rx2": "192.0.2.12", "rtr-a": "192.0.2.1",
         "rtr-b": "198.51.100.1", "tx": "198.51.100.10", "swa": "192.0.2.254"}
ADDR6 = {"rx1": "2001:db8:a::11", "rx2": "2001:db8:a::12", "rtr-a": "2001:db8:a::1",
         "rtr-b": "2001:db8:b::1", "tx": "2001:db8:b::10"}
RP = "192.0.2.1"
# What smcroute forwards from B to A for IPv6 (the bridge decides which port gets it).
IPV6_GROUPS = ("ff15::/16", "ff35::/16")
# The routers' leave timing (FRR: deciseconds): what the tests' bounds come from.
LAST_MEMBER_QUERY_INTERVAL_S = 1.0
LAST_MEMBER_QUERY_COUNT = 2
QUERY_RESPONSE_S = 1.0
BRIDGE_MARGIN_S = 0.3        # on top of the querier's delay, before up() returns

_FRR = "/usr/lib/frr"
_PR_SET_PDEATHSIG = 1
_CAP_SYS_ADMIN = 21
_START_TIMEOUT_S = 10.0


class LabError(RuntimeError):
    """The topology cannot be built (or was lost); the message says why."""


@dataclasses.dataclass(frozen=True)
class Host:
    """One namespace of the lab: ``name`` is its role (rx1, rx2, swa, rtr, tx),
    ``netns`` the ``ip netns`` name, ``ifname`` its subnet-facing interface,
    ``addr4``/``addr6`` the address there (None for the bridge's IPv6)."""

    name: str
    netns: str
    ifname: str
    addr4: str
    addr6: Optional[str]


def kernel_mroute() -> Dict[str, bool]:
    """Whether this kernel routes multicast (CONFIG_IP_MROUTE, CONFIG_IPV6_MROUTE:
    /proc/net/ip_mr_vif, ip6_mr_vif; the same in every network namespace)."""
    return {"ipv4": os.path.exists("/proc/net/ip_mr_vif"),
            "ipv6": os.path.exists("/proc/net/ip6_mr_vif")}


def plan(ipv4: bool = True, ipv6: bool = True) -> Dict[str, str]:
    """What forwards multicast from B to A in rtr, per family asked for: "pimd"
    (FRR; IGMPv3 router, PIM-SM) or "smcroute" (static (*,G) routes) where the
    kernel routes multicast, else "nftables" (see Topology._start_nft_forwarding)."""
    mroute = kernel_mroute()
    out = {}
    if ipv4:
        out["ipv4"] = "pimd" if mroute["ipv4"] else "nftables"
    if ipv6:
        out["ipv6"] = "smcroute" if mroute["ipv6"] else "nftables"
    return out


def missing_tools(ipv4: bool = True, ipv6: bool = True) -> List[str]:
    """The programs the topology needs on this machine (plan()) that it lacks."""
    need = ["ip", "nsenter", "unshare", "bridge", "sysctl"]
    chosen = plan(ipv4, ipv6).values()
    if "pimd" in chosen:
        need += [f"{_FRR}/zebra", f"{_FRR}/pimd", "vtysh"]
    if "smcroute" in chosen:
        need += ["smcrouted"]
    if "nftables" in chosen:
        need += ["nft"]
    missing = [n for n in need
               if not (os.access(n, os.X_OK) if n.startswith("/") else shutil.which(n))]
    if not (shutil.which("dumpcap") or shutil.which("tcpdump")):
        missing.append("dumpcap (or tcpdump, as root)")
    return missing


def state_dir(prefix: str) -> str:
    """Where a persistent lab keeps its record, configurations and sockets."""
    return os.path.join(tempfile.gettempdir(), f"mpoint-lab-{os.getuid()}", prefix)


def _pdeathsig() -> None:
    """preexec_fn: the child dies with this process (the safety net under down())."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _has_cap_sys_admin() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_SYS_ADMIN & 1)
    except OSError:
        pass
    return False


def _initial_user_namespace() -> bool:
    """Only the initial user namespace maps every id onto itself."""
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False


class Worker:
    """A Python process inside one lab host (``python -m mpoint.lab.worker``).

    ``call(code)`` runs ``code`` there (``exec``, in globals kept between
    calls; os, socket, struct, time and mpoint imported) and returns what it left in
    ``result`` (JSON); an exception there raises LabError here with its
    traceback.  Every call has a timeout; close() ends the process."""

    def __init__(self, proc: "subprocess.Popen[str]", host: Host) -> None:
        self._proc = proc
        self.host = host
        self._lock = threading.Lock()
        self._check_ready()

    def _read_line(self, timeout: float) -> str:
        assert self._proc.stdout is not None
        import selectors
        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise LabError(f"worker in {self.host.name}: no answer within {timeout} s")
        line = self._proc.stdout.readline()
        if not line:
            err = self._proc.stderr.read() if self._proc.stderr else ""
            raise LabError(f"worker in {self.host.name} ended: {err.strip()[-2000:]}")
        return line

    def _check_ready(self) -> None:
        hello = json.loads(self._read_line(_START_TIMEOUT_S))
        if not hello.get("ready"):
            raise LabError(f"worker in {self.host.name}: {hello}")
        self.netns_id = str(hello["netns"])

    def call(self, code: str, timeout: float = 30.0, **values: Any) -> Any:
        """Runs ``code`` in the worker with ``values`` bound as globals; returns
        its ``result``."""
        assert self._proc.stdin is not None
        with self._lock:
            self._proc.stdin.write(json.dumps({"code": code, "values": values}) + "\n")
            self._proc.stdin.flush()
            reply = json.loads(self._read_line(timeout))
        if not reply["ok"]:
            raise LabError(f"worker in {self.host.name} failed:\n{reply['error']}")
        return reply["result"]

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                self._proc.wait(2.0)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait(2.0)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Capture:
    """A packet capture on one interface of one host, from construction to stop();
    ``path`` is the classic pcap file (parse it yourself: the lab does not judge).
    dumpcap where installed (it captures in a user namespace, where tcpdump
    cannot drop its privileges), else tcpdump."""

    FLUSH_S = 0.5

    def __init__(self, lab: "Topology", host: str, ifname: str, path: str,
                 bpf: Sequence[str] = ()) -> None:
        self.path = path
        if shutil.which("dumpcap"):
            argv = ["dumpcap", "-q", "-P", "-s", "256", "-i", ifname, "-w", path]
            if bpf:
                argv += ["-f", " ".join(bpf)]
            ready = "Capturing on"
        else:
            argv = ["tcpdump", "-Z", "root", "-U", "-n", "-s", "256", "-i", ifname,
                    "-w", path, *bpf]
            ready = "listening on"
        self._proc = lab.popen(host, argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)
        assert self._proc.stderr is not None
        # Both say so once their socket is bound: from then on they see everything.
        seen = []
        for _ in range(20):                   # bounded: a few lines of banner at most
            line = self._proc.stderr.readline()
            seen.append(line.strip())
            if not line or ready in line:
                break
        if ready not in seen[-1]:
            self._proc.kill()
            self._proc.wait(2.0)
            raise LabError(f"{argv[0]} in {host} on {ifname} did not start: "
                           f"{' | '.join(seen)}")

    def stop(self) -> str:
        """Ends the capture and returns the file's path.  Waits FLUSH_S first:
        libpcap hands frames over in blocks, at the latest after its block
        timeout, and a capture interrupted sooner loses its last block."""
        if self._proc.poll() is None:
            time.sleep(self.FLUSH_S)
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(2.0)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        return self.path

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Topology:
    """Builds the lab (``up()``), runs things in its hosts, takes it down
    (``down()``, idempotent).  ``ipv4``: FRR's zebra and pimd; ``ipv6``:
    smcroute and the bridge's MLD querier.  ``prefix`` names the namespaces
    (``PREFIX-rx1`` ...).  ``persistent``: the lab outlives this process
    (its record in state_dir(prefix)); otherwise everything it starts dies
    with this process."""

    def __init__(self, prefix: str = "mpl", *, ipv4: bool = True, ipv6: bool = True,
                 persistent: bool = False) -> None:
        if not prefix.isalnum() or len(prefix) > 8:
            raise ValueError("prefix: up to 8 letters or digits")
        self.prefix = prefix
        self.ipv4, self.ipv6 = ipv4, ipv6
        self.persistent = persistent
        self.hosts: Dict[str, Host] = {
            "rx1": Host("rx1", f"{prefix}-rx1", "eth0", ADDR4["rx1"], ADDR6["rx1"]),
            "rx2": Host("rx2", f"{prefix}-rx2", "eth0", ADDR4["rx2"], ADDR6["rx2"]),
            "swa": Host("swa", f"{prefix}-swa", "br0", ADDR4["swa"], None),
            "rtr": Host("rtr", f"{prefix}-rtr", "eth-a", ADDR4["rtr-a"], ADDR6["rtr-a"]),
            "tx": Host("tx", f"{prefix}-tx", "eth0", ADDR4["tx"], ADDR6["tx"]),
        }
        self._outer: List[str] = []          # prefix that enters the holder's namespaces
        self._mode = "none"                   # who owns the namespaces: none, host, holder
        self._holder: Optional["subprocess.Popen[str]"] = None
        self._holder_pid: Optional[int] = None
        self._procs: List["subprocess.Popen[Any]"] = []
        self._dir: Optional[str] = None
        self._up = False
        self.netns_ids: Dict[str, str] = {}
        # What forwards multicast from B to A, per family: pimd / smcroute where the
        # kernel routes multicast, else nftables (see _start_nft_forwarding).
        self.forwarding: Dict[str, str] = {}
        self.timings: Dict[str, float] = {}
        self._old_handlers: Dict[int, Any] = {}
        self._querier_since = 0.0

    # -- running things in hosts ------------------------------------------------
    def _host(self, host: str) -> Host:
        try:
            return self.hosts[host]
        except KeyError:
            raise ValueError(f"no host {host!r}: one of {', '.join(self.hosts)}") from None

    def command(self, host: str, argv: Sequence[str]) -> List[str]:
        """The argv that runs ``argv`` inside ``host``'s network namespace."""
        return [*self._outer, "ip", "netns", "exec", self._host(host).netns, *argv]

    def enter_command(self, host: str) -> str:
        """What a person types to get a shell in ``host``."""
        return " ".join(self.command(host, [os.environ.get("SHELL", "/bin/sh")]))

    def popen(self, host: str, argv: Sequence[str], **kwargs: Any) -> "subprocess.Popen[Any]":
        """Starts ``argv`` in ``host``; down() kills it."""
        if not self.persistent:
            kwargs.setdefault("preexec_fn", _pdeathsig)
        else:
            kwargs.setdefault("start_new_session", True)
        proc: "subprocess.Popen[Any]" = subprocess.Popen(self.command(host, argv), **kwargs)
        self._procs.append(proc)
        return proc

    def run(self, host: str, argv: Sequence[str], timeout: float = 20.0,
            check: bool = True) -> "subprocess.CompletedProcess[str]":
        """Runs ``argv`` in ``host`` to completion; LabError if it fails and ``check``."""
        return self._run(self.command(host, argv), timeout, check)

    def _run(self, argv: Sequence[str], timeout: float = 20.0,
             check: bool = True) -> "subprocess.CompletedProcess[str]":
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                                  preexec_fn=None if self.persistent else _pdeathsig)
        except subprocess.TimeoutExpired:
            raise LabError(f"{' '.join(argv)}: no end within {timeout} s") from None
        except OSError as exc:
            raise LabError(f"{argv[0]}: {exc}") from None
        if check and proc.returncode != 0:
            raise LabError(f"{' '.join(argv)}: exit {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip()}")
        return proc

    def worker(self, host: str) -> Worker:
        """A Python worker in ``host`` (see Worker)."""
        expected = self.netns_ids.get(host, "")
        proc = self.popen(host, [sys.executable, "-m", "mpoint.lab.worker", expected],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, bufsize=1)
        return Worker(proc, self._host(host))

    def python(self, host: str, code: str, timeout: float = 30.0, **values: Any) -> Any:
        """Runs ``code`` once in a fresh worker in ``host`` (see Worker.call) and
        returns its ``result``."""
        with self.worker(host) as w:
            return w.call(code, timeout, **values)

    def capture(self, host: str, ifname: Optional[str] = None,
                bpf: Sequence[str] = ()) -> Capture:
        """Starts tcpdump on ``host``'s interface (default: its subnet-facing one)."""
        assert self._dir is not None
        path = os.path.join(self._dir, f"{host}-{len(self._procs)}.pcap")
        return Capture(self, host, ifname or self._host(host).ifname, path, bpf)

    def vtysh(self, *commands: str) -> str:
        """FRR's vtysh against the lab's pimd (IPv4 only)."""
        assert self._dir is not None
        argv = ["vtysh", "--vty_socket", self._dir, "-d", "pimd"]
        for c in commands:
            argv += ["-c", c]
        return self._run(argv).stdout

    # -- building ---------------------------------------------------------------
    def up(self) -> "Topology":
        """Builds the lab; LabError (after removing what was built) if it cannot."""
        if self._up:
            return self
        missing = missing_tools(self.ipv4, self.ipv6)
        if missing:
            raise LabError(f"cannot build the router lab: missing {', '.join(missing)} "
                           f"(forwarding plan {plan(self.ipv4, self.ipv6)}; "
                           ".ci/router/install installs them)")
        if not sys.platform.startswith("linux"):
            raise LabError("cannot build the router lab: network namespaces exist only on Linux")
        if self.persistent:
            record = os.path.join(state_dir(self.prefix), "lab.json")
            if os.path.exists(record):
                raise LabError(f"cannot build: a lab {self.prefix!r} is up already "
                               f"({record}); take it down first")
            if os.geteuid() == 0 and _initial_user_namespace() and any(
                    os.path.exists(f"/run/netns/{h.netns}") for h in self.hosts.values()):
                raise LabError(f"cannot build: namespaces {self.prefix}-* exist already "
                               "(ip netns list); choose another --prefix")
        self._install_handlers()
        t0 = time.monotonic()
        try:
            self._dir = state_dir(self.prefix) if self.persistent else \
                tempfile.mkdtemp(prefix=f"mpoint-lab-{self.prefix}-")
            if self.persistent:
                os.makedirs(self._dir, exist_ok=True)
            self._choose_namespace_owner()
            self._build_links()
            self.timings["links_s"] = time.monotonic() - t0
            self.forwarding = plan(self.ipv4, self.ipv6)
            if self.forwarding.get("ipv4") == "pimd":
                self._start_frr()
            if self.forwarding.get("ipv6") == "smcroute":
                self._start_smcroute()
            nft = [f for f, how in self.forwarding.items() if how == "nftables"]
            if nft:
                self._start_nft_forwarding(ipv4="ipv4" in nft, ipv6="ipv6" in nft)
            settled = self._querier_since + QUERY_RESPONSE_S + BRIDGE_MARGIN_S
            time.sleep(max(0.0, settled - time.monotonic()))
            self._up = True
            if self.persistent:
                self._save()
        except BaseException:
            self.down()
            raise
        self.timings["up_s"] = time.monotonic() - t0
        return self

    def _choose_namespace_owner(self) -> None:
        if self.persistent and os.geteuid() == 0 and _initial_user_namespace():
            self._outer = []                  # plain ip netns: names a person can use
            self._mode = "host"
            return
        # A holder: its mount namespace carries a private /run (and /run/netns); its
        # network namespace (empty) is where ip netns returns to after making one,
        # which a user namespace's root may enter where the host's is refused.
        argv = ["unshare", "--mount", "--net", "--propagation", "private"]
        if not _has_cap_sys_admin():
            argv[1:1] = ["--user", "--map-root-user"]
        argv += ["sh", "-c", "mount -t tmpfs -o mode=755 tmpfs /run && mkdir /run/netns && "
                 "echo ready && exec sleep 2147483647"]
        kwargs: Dict[str, Any] = ({"start_new_session": True} if self.persistent
                                  else {"preexec_fn": _pdeathsig})
        try:
            self._holder = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True, **kwargs)
        except OSError as exc:
            raise LabError(f"cannot build: unshare: {exc}") from None
        assert self._holder.stdout is not None and self._holder.stderr is not None
        line = self._holder.stdout.readline()
        if line.strip() != "ready":
            self._holder.wait(5.0)
            why = self._holder.stderr.read().strip()
            raise LabError(f"cannot build: no mount namespace of our own ({why}); "
                           "needs root or unprivileged user namespaces")
        self._holder_pid = self._holder.pid
        self._mode = "holder"
        self._outer = ["nsenter", "-t", str(self._holder.pid), "-m", "-n"]
        if "--user" in argv:
            self._outer[1:1] = ["--preserve-credentials", "-U"]

    def _build_links(self) -> None:
        for h in self.hosts.values():
            self._run([*self._outer, "ip", "netns", "add", h.netns])
        ns = {name: h.netns for name, h in self.hosts.items()}
        me = os.readlink("/proc/self/ns/net")
        for name in self.hosts:
            self.netns_ids[name] = self.run(name, ["readlink", "/proc/self/ns/net"]).stdout.strip()
            if self.netns_ids[name] == me:
                raise LabError(f"host {name} is in the caller's network namespace: refusing")
        conf = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0",
                "net.ipv6.conf.all.router_solicitations=0",
                "net.ipv6.conf.default.router_solicitations=0",
                "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                # Namespace-local limits: GroupSet's 1,000 groups, its sockets' sources.
                "net.ipv4.igmp_max_memberships=4096", "net.core.optmem_max=16777216"]
        for name in self.hosts:
            self.run(name, ["sysctl", "-qw", *conf])
        self.run("rtr", ["sysctl", "-qw", "net.ipv4.ip_forward=1",
                         "net.ipv6.conf.all.forwarding=1"])
        # Each veth is made inside a namespace, its peer moved straight into another.
        for rx in ("rx1", "rx2"):
            self.run(rx, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name",
                          f"p-{rx}", "netns", ns["swa"]])
        self.run("rtr", ["ip", "link", "add", "eth-a", "type", "veth", "peer", "name",
                         "p-rtr", "netns", ns["swa"]])
        self.run("rtr", ["ip", "link", "add", "eth-b", "type", "veth", "peer", "name",
                         "eth0", "netns", ns["tx"]])
        # The bridge: snooping, IGMPv3/MLDv2, fast timers (one command), then querier
        # (a second command, or the 10 s defaults apply).  Its IPv4 address is above
        # the router's, so pimd wins the IGMP querier election (RFC 3376 6.6.2).
        t = "100"                             # centiseconds
        self.run("swa", ["ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "1",
                         "mcast_igmp_version", "3", "mcast_mld_version", "2"])
        self.run("swa", ["ip", "link", "set", "br0", "type", "bridge",
                         "mcast_query_interval", "1000", "mcast_query_response_interval", t,
                         "mcast_last_member_interval", t, "mcast_last_member_count",
                         str(LAST_MEMBER_QUERY_COUNT), "mcast_startup_query_interval", "250",
                         "mcast_startup_query_count", "1", "mcast_query_use_ifaddr", "1"])
        for port in ("p-rx1", "p-rx2", "p-rtr"):
            self.run("swa", ["ip", "link", "set", port, "master", "br0"])
            self.run("swa", ["ip", "link", "set", port, "up"])
        self.run("swa", ["ip", "addr", "add", f"{ADDR4['swa']}/24", "dev", "br0"])
        self.run("swa", ["ip", "link", "set", "br0", "up"])
        addrs = {"rx1": [("eth0", "rx1")], "rx2": [("eth0", "rx2")],
                 "rtr": [("eth-a", "rtr-a"), ("eth-b", "rtr-b")], "tx": [("eth0", "tx")]}
        for name, links in addrs.items():
            for ifname, key in links:
                self.run(name, ["ip", "addr", "add", f"{ADDR4[key]}/24", "dev", ifname])
                self.run(name, ["ip", "-6", "addr", "add", f"{ADDR6[key]}/64", "dev", ifname,
                                "nodad"])
                self.run(name, ["ip", "link", "set", ifname, "up"])
            self.run(name, ["ip", "link", "set", "lo", "up"])
        for rx in ("rx1", "rx2"):
            self.run(rx, ["ip", "route", "add", "default", "via", ADDR4["rtr-a"]])
            self.run(rx, ["ip", "-6", "route", "add", "default", "via", ADDR6["rtr-a"]])
        self.run("tx", ["ip", "route", "add", "default", "via", ADDR4["rtr-b"]])
        self.run("tx", ["ip", "-6", "route", "add", "default", "via", ADDR6["rtr-b"]])
        # Bounded wait: every link up with its carrier (operstate UP) in every host.
        carriers = {"rx1": ["eth0"], "rx2": ["eth0"], "tx": ["eth0"], "rtr": ["eth-a", "eth-b"],
                    "swa": ["br0", "p-rx1", "p-rx2", "p-rtr"]}
        for name, ifnames in carriers.items():
            for ifname in ifnames:
                self._wait(lambda: "state UP" in self.run(
                    name, ["ip", "-o", "link", "show", "dev", ifname]).stdout,
                    f"{ifname} in {name} has no carrier")
        # The bridge queries MLD from its link-local address only: wait for it, then
        # make it querier.  It counts a querier as present (and stops flooding
        # unregistered groups to every port) one query response interval later
        # (br_multicast_set_querier's delay timer): up() waits for that too.
        self._wait(lambda: "fe80:" in self.run("swa", ["ip", "-6", "addr", "show", "dev",
                                                       "br0"]).stdout,
                   "br0 has no IPv6 link-local address")
        self.run("swa", ["ip", "link", "set", "br0", "type", "bridge", "mcast_querier", "1"])
        self._querier_since = time.monotonic()

    def _wait(self, ready: Any, what: str, timeout: float = _START_TIMEOUT_S,
              log: Optional[str] = None) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() >= deadline:
                tail = ""
                if log is not None and self._dir is not None:
                    try:
                        with open(os.path.join(self._dir, f"{log}.log")) as f:
                            tail = "; its log ends: " + " | ".join(f.read().splitlines()[-8:])
                    except OSError:
                        pass
                raise LabError(f"cannot build: {what} (after {timeout} s){tail}")
            time.sleep(0.05)

    def _daemon(self, name: str, argv: Sequence[str]) -> "subprocess.Popen[Any]":
        """A daemon in rtr with a private /run, its output in a log file."""
        assert self._dir is not None
        log = open(os.path.join(self._dir, f"{name}.log"), "w")
        try:
            return self.popen("rtr", ["unshare", "--mount", "sh", "-c",
                                      'mount -t tmpfs tmpfs /run && exec "$@"', name, *argv],
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()

    def _start_frr(self) -> None:
        assert self._dir is not None
        try:
            with open("/proc/self/setgroups") as f:
                denied = f.read().strip() == "deny"
        except OSError:
            denied = False
        if denied:
            raise LabError("cannot build: FRR's daemons call setgroups(2), which this user "
                           "namespace denies (/proc/self/setgroups); run as root outside a "
                           "user namespace (the test suite: MPOINT_PRIVILEGED_NETNS=1), or "
                           "rootless with newuidmap/newgidmap mappings")
        d = self._dir
        zsock = os.path.join(d, "zserv.api")
        ms = int(LAST_MEMBER_QUERY_INTERVAL_S * 10)
        pimd_conf = "\n".join([
            "hostname rtr", "ip pim spt-switchover infinity-and-beyond",
            "interface eth-a", " ip pim", " ip igmp", " ip igmp version 3",
            f" ip igmp query-max-response-time {int(QUERY_RESPONSE_S * 10)}",
            f" ip igmp last-member-query-interval {ms}",
            f" ip igmp last-member-query-count {LAST_MEMBER_QUERY_COUNT}",
            "interface eth-b", " ip pim", ""])
        for name, text in (("zebra", "hostname rtr\n"), ("pimd", pimd_conf)):
            with open(os.path.join(d, f"{name}.conf"), "w") as f:
                f.write(text)
        # As root, with the vty group FRR insists on as the primary group (its
        # privs_init refuses a user outside that group).
        common = ["-u", "root", "-g", "frrvty", "--vty_socket", d, "-z", zsock]
        self._daemon("zebra", [f"{_FRR}/zebra", *common, "-f", os.path.join(d, "zebra.conf"),
                               "-i", os.path.join(d, "zebra.pid")])
        self._wait(lambda: os.path.exists(zsock), "zebra did not open its socket", log="zebra")
        self._daemon("pimd", [f"{_FRR}/pimd", *common, "-f", os.path.join(d, "pimd.conf"),
                              "-i", os.path.join(d, "pimd.pid")])
        self._wait(lambda: os.path.exists(os.path.join(d, "pimd.vty")),
                   "pimd did not open its vty", log="pimd")
        # The static RP is refused in the start-up file: set it once pimd runs.
        self.vtysh("configure terminal", f"ip pim rp {RP} 224.0.0.0/4")
        self._wait(lambda: "eth-a" in self.vtysh("show ip igmp interface"),
                   "pimd runs no IGMP on eth-a", log="pimd")

    def _start_nft_forwarding(self, ipv4: bool, ipv6: bool) -> None:
        """The data plane where the kernel has no multicast routing: an nftables
        ingress rule on eth-b forwards routable-scope multicast (224.0.1.0 and up;
        ff15::/16, ff35::/16) out of eth-a as a router's forwarding path would:
        only with a TTL / hop limit above 1, which ``fwd ... to ADDR device``
        (nft_fwd_neigh) decrements, in a frame with eth-a's source address.
        Which hosts then get it is the snooping bridge's decision, driven by the
        IGMPv3 / MLDv2 querier and the hosts' reports (RFC 4541): delivery into
        A stays membership-driven, including the last-member queries after a
        leave.  Works in a user namespace (payload rewriting would not)."""
        assert self._dir is not None
        lines = ["table netdev mpoint_lab {", "  chain from_b {",
                 '    type filter hook ingress device "eth-b" priority 0; policy accept;']
        if ipv4:
            lines.append('    ip daddr 224.0.1.0-239.255.255.255 ip ttl > 1 '
                         'fwd ip to ip daddr device "eth-a"')
        if ipv6:
            for g in IPV6_GROUPS:
                lines.append(f'    ip6 daddr {g} ip6 hoplimit > 1 '
                             'fwd ip6 to ip6 daddr device "eth-a"')
        lines += ["  }", "}", ""]
        path = os.path.join(self._dir, "forward.nft")
        with open(path, "w") as f:
            f.write("\n".join(lines))
        self.run("rtr", ["nft", "-f", path])

    def _start_smcroute(self) -> None:
        assert self._dir is not None
        d = self._dir
        lines = ["phyint eth-a enable", "phyint eth-b enable"]
        lines += [f"mroute from eth-b group {g} to eth-a" for g in IPV6_GROUPS]
        conf = os.path.join(d, "smcroute.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        sock = os.path.join(d, "smcroute.sock")
        self._daemon("smcroute", ["smcrouted", "-n", "-N", "-f", conf, "-u", sock,
                                  "-P", os.path.join(d, "smcroute.pid"), "-l", "info"])
        self._wait(lambda: os.path.exists(sock), "smcrouted did not open its socket",
                   log="smcroute")

    # -- taking down ------------------------------------------------------------
    def _lab_pids(self) -> List[int]:
        pids: List[int] = []
        for h in self.hosts.values():
            proc = self._run([*self._outer, "ip", "netns", "pids", h.netns], check=False,
                             timeout=10)
            pids += [int(p) for p in proc.stdout.split() if p.isdigit()]
        return [p for p in pids if p != os.getpid()]

    def down(self) -> None:
        """Kills every lab process, removes the namespaces and the state; idempotent,
        and complete even after a partial up()."""
        if self._mode in ("host", "holder"):
            try:
                self._kill_lab_processes()
                for h in self.hosts.values():
                    self._run([*self._outer, "ip", "netns", "del", h.netns], check=False,
                              timeout=10)
            except LabError:
                pass
        self._mode = "none"
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                pass
        self._procs.clear()
        if self._holder_pid is not None:
            try:
                os.kill(self._holder_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self._holder is not None:
                self._holder.wait(5.0)
                for stream in (self._holder.stdout, self._holder.stderr):
                    if stream is not None:
                        stream.close()
            self._holder, self._holder_pid = None, None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            if self.persistent:
                try:
                    os.rmdir(os.path.dirname(self._dir))   # state_dir's parent, if empty
                except OSError:
                    pass
            self._dir = None
        self._up = False
        self._restore_handlers()

    def _kill_lab_processes(self) -> None:
        # Twice, bounded: a daemon may fork while we kill (zebra's children, tcpdump).
        for _ in range(3):
            pids = self._lab_pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and any(_alive(p) for p in pids):
                for proc in self._procs:
                    proc.poll()
                time.sleep(0.02)

    def _install_handlers(self) -> None:
        if self.persistent:
            return
        atexit.register(self.down)
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            old = signal.getsignal(sig)
            if old in (signal.SIG_DFL, None):
                self._old_handlers[sig] = old
                signal.signal(sig, _interrupted)

    def _restore_handlers(self) -> None:
        atexit.unregister(self.down)
        for sig, old in self._old_handlers.items():
            if threading.current_thread() is threading.main_thread():
                signal.signal(sig, old)
        self._old_handlers.clear()

    def __enter__(self) -> "Topology":
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- persistent labs (the command line) --------------------------------------
    def _save(self) -> None:
        assert self._dir is not None
        record = {"prefix": self.prefix, "ipv4": self.ipv4, "ipv6": self.ipv6,
                  "outer": self._outer, "holder": self._holder_pid, "mode": self._mode,
                  "netns_ids": self.netns_ids}
        with open(os.path.join(self._dir, "lab.json"), "w") as f:
            json.dump(record, f)
        # The command line's process ends; its children live on alone.
        self._procs.clear()
        self._holder = None

    @classmethod
    def load(cls, prefix: str = "mpl") -> "Topology":
        """The persistent lab ``prefix`` that ``up()`` recorded; LabError if none."""
        path = os.path.join(state_dir(prefix), "lab.json")
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError):
            raise LabError(f"no lab {prefix!r} is up (no {path})") from None
        lab = cls(prefix, ipv4=record["ipv4"], ipv6=record["ipv6"], persistent=True)
        lab._outer, lab._holder_pid = record["outer"], record["holder"]
        lab.netns_ids = record["netns_ids"]
        lab._dir, lab._up, lab._mode = state_dir(prefix), True, record["mode"]
        if lab._holder_pid is not None and not _alive(lab._holder_pid):
            lab._holder_pid = None
            lab._mode = "none"                  # the namespaces went with the holder
        return lab

    def status(self) -> List[str]:
        """Lines that say what runs where."""
        lines = []
        for name, h in self.hosts.items():
            proc = self._run([*self._outer, "ip", "netns", "pids", h.netns], check=False)
            state = "up" if proc.returncode == 0 else "missing"
            lines.append(f"{name:4} {h.netns:10} {state:8} {h.ifname} {h.addr4} "
                         f"{h.addr6 or ''}  processes: {len(proc.stdout.split())}")
        if self.ipv4 and self._dir and os.path.exists(os.path.join(self._dir, "pimd.vty")):
            lines.append(self.vtysh("show ip igmp groups").rstrip())
        mdb = self._run(self.command("swa", ["bridge", "mdb", "show"]), check=False)
        lines.append("bridge mdb:\n" + (mdb.stdout.rstrip() or "  (empty)"))
        return lines


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a zombie child is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _interrupted(signum: int, frame: Any) -> None:
    # Unwinds through the with-block (and pytest's fixtures) so down() runs.
    raise KeyboardInterrupt(f"signal {signum}")
