"""Applying a QOS to a socket: WSAJoinLeaf's lpSQOS / lpGQOS and
SIO_SET_QOS / SIO_GET_QOS (``MultipointSocket.set_qos`` / ``get_qos``).

Contract: the request is read and planned first (mpoint.qos_plan.plan: what
cannot be honoured raises WSAEOPNOTSUPP naming the field, before anything
changes); then the token bucket (the C send path) and the kernel's marks
(mp_qos_apply: DSCP, socket priority, pacing, receive buffer) are set; a
join that fails afterwards takes them back to what the socket had.  The
socket keeps the QOS it applied (``get_qos``) and its plan; a change is
reported as FD_QOS to the socket's EventSet.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Optional, Tuple

from . import _core
from .errors import from_code
from .qos import QOS
from .qos_plan import QosPlan, plan

if TYPE_CHECKING:
    from .multipoint_socket import MultipointSocket

# The marks this system applies (_core.QOS_*), asked once.
_SUPPORTED: Optional[int] = None


def _supported() -> int:
    global _SUPPORTED
    if _SUPPORTED is None:
        _SUPPORTED = int(_core.qos_supported())
    return _SUPPORTED


def as_qos(value: Any, what: str) -> QOS:
    """A QOS, or the bytes of Winsock's QOS structure (QOS.from_bytes:
    WSAEFAULT for a buffer too small, as the spec says of lpSQOS)."""
    if isinstance(value, QOS):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return QOS.from_bytes(value)
    raise TypeError(f"{what} must be a mpoint.QOS or the bytes of a QOS structure, "
                    f"not {type(value).__name__}")


def _check_marks(p: QosPlan, call: str) -> None:
    """WSAEOPNOTSUPP, naming the flowspec field, for a mark this system
    cannot set (qos_plan knows the platform; a Windows without qWAVE is
    known only here)."""
    have = _supported()
    if p.dscp and not have & _core.QOS_DSCP:
        raise from_code("WSAEOPNOTSUPP", call,
                        f"service_type asks for DSCP {p.dscp}, which this system cannot mark "
                        "(Windows: qWAVE, qwave.dll, is not available)")
    if p.priority and not have & _core.QOS_PRIORITY:
        raise from_code("WSAEOPNOTSUPP", call, "service_type: no socket priority on this system")
    if p.pacing_rate is not None and not have & _core.QOS_PACING:
        raise from_code("WSAEOPNOTSUPP", call, "token_rate: no kernel pacing on this system")


class Pending:
    """A planned QOS for one socket: apply() sets it, undo() puts back what
    the socket had, commit() records it as the socket's."""

    __slots__ = ("sock", "qos", "plan", "_before", "_applied")

    def __init__(self, sock: "MultipointSocket", qos: QOS, p: QosPlan) -> None:
        self.sock, self.qos, self.plan = sock, qos, p
        self._before: Optional[QosPlan] = sock._mp.qos_plan
        self._applied = False

    def apply(self, dest: Any = None) -> None:
        """The token bucket, then the marks.  dest: the group the socket
        sends to (a Windows qWAVE flow is towards it), None if not known."""
        self._applied = True
        try:
            _mark(self.sock, self.plan, dest)
        except BaseException:
            self.undo()           # all or nothing
            raise

    def undo(self) -> None:
        """What the socket had before apply(); an error here would hide the
        one being raised, so it is not raised."""
        if not self._applied:
            return
        self._applied = False
        try:
            _mark(self.sock, self._before, self.sock._mp.dest)
        except OSError:
            pass

    def commit(self) -> None:
        st = self.sock._mp
        changed = st.qos != self.plan.qos
        st.qos, st.qos_plan = self.plan.qos, self.plan
        if changed:
            _core.sock_post_qos(self.sock)


def _mark(sock: "MultipointSocket", p: Optional[QosPlan], dest: Any) -> None:
    """The socket's QoS state becomes p's (None: none): the token bucket,
    then every mark this system has -- what p leaves unset back to its
    neutral value (DSCP 0, priority 0, no pacing limit), so that a new
    QOS never inherits an old one's marks.  The receive buffer only grows
    and is not put back."""
    have = _supported()
    shaper = p.shaper if p is not None else None
    if shaper is None:
        _core.sock_set_shaper(sock, None)
    else:
        _core.sock_set_shaper(sock, *shaper)
    dscp = p.dscp if p is not None and p.dscp is not None else 0
    priority = p.priority if p is not None and p.priority is not None else 0
    pacing = p.pacing_rate if p is not None and p.pacing_rate is not None else -1
    _core.sock_apply_qos(sock, dscp if have & _core.QOS_DSCP else None,
                         priority if have & _core.QOS_PRIORITY else None,
                         pacing if have & _core.QOS_PACING else None,
                         p.rcvbuf if p is not None else None,
                         dest if have & _core.QOS_DSCP else None)


def _role(sock: "MultipointSocket", default: int) -> int:
    role = sock._mp.join_flags
    return int(role) if role else default


def plan_request(role: int, sqos: Any, gqos: Any, current: Optional[QosPlan] = None,
                 call: str = "WSAJoinLeaf") -> Optional[Tuple[QOS, QosPlan]]:
    """The (QOS, plan) of join_leaf's lpSQOS for the JL_* role it joins as
    (sender-only ignores the receiving flowspec, receiver-only the sending
    one), or None when there is nothing to apply.  lpGQOS is read and
    validated, and ignored: mpoint creates no socket groups."""
    request = as_qos(sqos, "sqos") if sqos is not None else None
    group = as_qos(gqos, "gqos") if gqos is not None else None
    if request is None:
        plan(QOS(), role, platform=sys.platform, current=current, gqos=group)
        return None
    p = plan(request, role, platform=sys.platform, current=current, gqos=group)
    _check_marks(p, call)
    return request, p


def prepare(sock: "MultipointSocket", role: int, sqos: Any, gqos: Any,
            call: str = "WSAJoinLeaf") -> Optional[Pending]:
    """join_leaf's QoS for sock, planned (plan_request), not yet applied."""
    planned = plan_request(role, sqos, gqos, sock._mp.qos_plan, call)
    return None if planned is None else Pending(sock, *planned)


def set_qos(sock: "MultipointSocket", qos: Any, role: Optional[int] = None) -> None:
    """SIO_SET_QOS: the socket's QOS becomes ``qos``, planned for ``role``
    (None: the role it joined as; before a join, JL_BOTH: both flowspecs
    count)."""
    pending = prepare(sock, _role(sock, _core.JL_BOTH) if role is None else role, qos, None,
                      "SIO_SET_QOS")
    assert pending is not None
    if sock.fileno() < 0:
        raise from_code("WSAENOTSOCK", "SIO_SET_QOS", "the socket is closed")
    pending.apply(sock._mp.dest or sock._mp.joined)
    pending.commit()


def get_qos(sock: "MultipointSocket") -> QOS:
    """SIO_GET_QOS: the QOS the socket applied (QOS() when none)."""
    qos = sock._mp.qos
    return qos if qos is not None else QOS()


def applied(sock: "MultipointSocket") -> Optional[QosPlan]:
    """What the socket's QOS became on this system (its plan), or None."""
    p: Optional[QosPlan] = sock._mp.qos_plan
    return p


__all__: Tuple[str, ...] = ("as_qos", "plan_request", "prepare", "set_qos", "get_qos", "applied", "Pending")
