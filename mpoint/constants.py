"""Winsock's multipoint constants, with Winsock's names and values."""
from __future__ import annotations

import enum

from . import _core


class JoinFlag(enum.IntEnum):
    """WSAJoinLeaf's dwFlags: the leaf's role in the session."""

    JL_SENDER_ONLY = _core.JL_SENDER_ONLY
    JL_RECEIVER_ONLY = _core.JL_RECEIVER_ONLY
    JL_BOTH = _core.JL_BOTH


class SocketFlag(enum.IntFlag):
    """WSASocket's dwFlags that mpoint understands."""

    WSA_FLAG_OVERLAPPED = _core.WSA_FLAG_OVERLAPPED
    WSA_FLAG_MULTIPOINT_C_ROOT = _core.WSA_FLAG_MULTIPOINT_C_ROOT
    WSA_FLAG_MULTIPOINT_C_LEAF = _core.WSA_FLAG_MULTIPOINT_C_LEAF
    WSA_FLAG_MULTIPOINT_D_ROOT = _core.WSA_FLAG_MULTIPOINT_D_ROOT
    WSA_FLAG_MULTIPOINT_D_LEAF = _core.WSA_FLAG_MULTIPOINT_D_LEAF
    WSA_FLAG_NO_HANDLE_INHERIT = _core.WSA_FLAG_NO_HANDLE_INHERIT


class Plane(str, enum.Enum):
    """A multipoint socket's role on its control or data plane."""

    ROOT = "root"
    LEAF = "leaf"


JL_SENDER_ONLY = JoinFlag.JL_SENDER_ONLY
JL_RECEIVER_ONLY = JoinFlag.JL_RECEIVER_ONLY
JL_BOTH = JoinFlag.JL_BOTH
WSA_FLAG_OVERLAPPED = SocketFlag.WSA_FLAG_OVERLAPPED
WSA_FLAG_MULTIPOINT_C_ROOT = SocketFlag.WSA_FLAG_MULTIPOINT_C_ROOT
WSA_FLAG_MULTIPOINT_C_LEAF = SocketFlag.WSA_FLAG_MULTIPOINT_C_LEAF
WSA_FLAG_MULTIPOINT_D_ROOT = SocketFlag.WSA_FLAG_MULTIPOINT_D_ROOT
WSA_FLAG_MULTIPOINT_D_LEAF = SocketFlag.WSA_FLAG_MULTIPOINT_D_LEAF
WSA_FLAG_NO_HANDLE_INHERIT = SocketFlag.WSA_FLAG_NO_HANDLE_INHERIT
