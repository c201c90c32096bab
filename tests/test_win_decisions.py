"""The decisions the Windows files make, kept in portable C (common.c,
events.c) or Python (ext/build_sources.py) so that every platform's suite
tests them; the system calls acting on them are in ext/win and are checked
by the Windows CI job (.github/workflows/tests.yml) and under Wine.
Codes are Winsock's numbers (WSAGetLastError())."""
from __future__ import annotations

import os
import socket
import sys

import pytest

import mpoint
from mpoint import _core

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "ext"))
import build_sources  # noqa: E402

WSAEINVAL, WSAEWOULDBLOCK, WSAESOCKTNOSUPPORT, WSAECONNRESET = 10022, 10035, 10044, 10054
WSAENETDOWN, WSAEOPNOTSUPP, WSAEPROTONOSUPPORT = 10050, 10045, 10043
POLL_IN, POLL_OUT, POLL_ERR, POLL_HUP = 0x1, 0x2, 0x4, 0x8
FD_READ, FD_WRITE, FD_CLOSE = 0x01, 0x02, 0x20


# -- WSAJoinLeaf's answer (win/join.c native_join) ---------------------------------------

def test_a_would_block_native_join_is_pending_not_failed() -> None:
    # WSAEventSelect makes a socket non-blocking; WSAJoinLeaf may then say
    # WSAEWOULDBLOCK and complete as FD_CONNECT (spec): joined natively.
    assert _core._native_join_verdict(WSAEWOULDBLOCK) == _core.JOINED_NATIVE


def test_a_native_join_without_a_code_falls_back_to_options() -> None:
    assert _core._native_join_verdict(0) == _core.JOINED_BY_OPTION     # a stub (Wine 8)


@pytest.mark.parametrize("code", [WSAEINVAL, WSAENETDOWN, WSAEOPNOTSUPP])
def test_a_native_join_that_fails_reports_the_provider_code(code: int) -> None:
    assert _core._native_join_verdict(code) == -1


# -- layered providers without multipoint (win/socket.c mp__socket_open) ------------------

def test_a_layered_provider_without_multipoint_gets_a_plain_socket() -> None:
    assert _core._plain_socket_fallback(WSAESOCKTNOSUPPORT)
    for code in (0, WSAEINVAL, WSAEPROTONOSUPPORT, 10024):      # 10024: WSAEMFILE
        assert not _core._plain_socket_fallback(code)


def test_join_method_names_a_plain_socket() -> None:
    from mpoint import multipoint_socket as ms
    assert ms._JOIN_METHODS == {
        _core.JOINED_BY_OPTION: "socket options", _core.JOINED_NATIVE: "WSAJoinLeaf",
        _core.JOINED_PLAIN: "socket options (no multipoint provider)"}
    with mpoint.socket() as s:
        assert s.plain is False                 # every provider here has multipoint


# -- loopback and scope: which way the set went (win/socket.c mp__set_int_option) ---------

@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_option_method_says_which_way_the_value_went(family: int) -> None:
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6 in this build of Python")
    with mpoint.socket(family) as s:
        assert s.option_method is None
        s.multipoint_loopback = False
        # POSIX has only the options; Wine answers the ioctls WSAEOPNOTSUPP.
        # A real Windows provider may take the ioctl (the Windows CI job logs it).
        expected = {"socket options"} if sys.platform != "win32" else {"socket options", "ioctl"}
        assert s.option_method in expected
        s.multicast_scope = 3
        assert s.option_method in expected and s.multicast_scope == 3
        assert s.multipoint_loopback is False


# -- WSAEnumNetworkEvents' iErrorCode[] (events.c, win/wsaevent.c) -------------------------

def test_the_pollers_own_code_is_reported_per_event() -> None:
    codes = (WSAECONNRESET, 0, WSAENETDOWN)           # in, out, hup
    what = POLL_IN | POLL_OUT | POLL_HUP | POLL_ERR
    assert _core._ready_error(what, codes, FD_READ, 99) == (WSAECONNRESET, False)
    assert _core._ready_error(what, codes, FD_WRITE, 99) == (0, False)
    assert _core._ready_error(what, codes, FD_CLOSE, 99) == (WSAENETDOWN, False)


def test_without_the_pollers_codes_the_socket_error_is_asked() -> None:
    assert _core._ready_error(POLL_IN | POLL_ERR, None, FD_READ, WSAECONNRESET) == \
        (WSAECONNRESET, True)
    assert _core._ready_error(POLL_IN, None, FD_READ, WSAECONNRESET) == (0, False)
    # A reset connection: FD_CLOSE carries the code (rooted control sockets).
    assert _core._ready_error(POLL_HUP | POLL_ERR, None, FD_CLOSE, WSAECONNRESET) == \
        (WSAECONNRESET, True)
    assert _core._ready_error(POLL_HUP, None, FD_CLOSE, WSAECONNRESET) == (0, False)


def test_a_code_read_with_the_event_is_believed_without_asking_the_socket() -> None:
    # kqueue: EV_EOF's fflags (kqueue_rules.c) arrive in the record itself.
    assert _core._ready_error(POLL_IN | POLL_ERR, None, FD_READ, 0, error=WSAECONNRESET) == \
        (WSAECONNRESET, False)
    assert _core._ready_error(POLL_IN, None, FD_READ, 0, error=WSAECONNRESET) == (0, False)


# -- an empty WSAPoll set (win/wsapoll.c) --------------------------------------------------

@pytest.mark.parametrize("timeout, sleep", [(-1, 100), (0, 0), (40, 40), (100, 100),
                                            (5000, 100), (2**31 - 1, 100)])
def test_an_empty_poller_sleeps_one_slice_at_most(timeout: int, sleep: int) -> None:
    assert _core._empty_wait_ms(timeout) == sleep


# -- build flags per compiler (setup.py) ---------------------------------------------------

def test_msvc_gets_its_own_flags() -> None:
    flags = build_sources.build_flags
    assert flags("msvc", {}) == (["/W3"], [])
    assert flags("msvc", {"MPOINT_WERROR": "1"}) == (["/W3", "/WX"], [])
    c, link = flags("msvc", {"MPOINT_DEBUG": "1"})
    assert c == ["/W3", "/Od", "/Zi", "/UNDEBUG"] and link == ["/DEBUG"]
    c, link = flags("msvc", {"MPOINT_SANITIZE": "1", "MPOINT_WERROR": "1"})
    assert c[:2] == ["/W3", "/WX"] and "/fsanitize=address" in c and "/DEBUG" in link
    for c, link in (flags("msvc", {k: "1"}) for k in ("MPOINT_DEBUG", "MPOINT_SANITIZE",
                                                      "MPOINT_WERROR")):
        assert not [f for f in c + link if f.startswith("-")]     # no GCC option


@pytest.mark.parametrize("compiler", ["unix", "mingw32"])
def test_gcc_and_clang_keep_theirs(compiler: str) -> None:
    c, link = build_sources.build_flags(compiler, {"MPOINT_WERROR": "1", "MPOINT_DEBUG": "1"})
    assert c[:3] == ["-Wall", "-Wextra", "-Werror"] and "-O0" in c and link == []
    c, link = build_sources.build_flags(compiler, {"MPOINT_SANITIZE": "1"})
    assert "-Werror" not in c and "-fsanitize=address,undefined" in c and link == c[-5:]
    assert not [f for f in c + link if f.startswith("/")]


# -- the CI smoke test (tests/smoke.py, first step of the Windows job) --------------------

def test_the_smoke_test_sends_one_datagram_to_itself(capsys: pytest.CaptureFixture[str]) -> None:
    import smoke
    assert smoke.main() == 0
    out = capsys.readouterr().out
    assert out.startswith("smoke: ok") and "join_method=" in out and "option_method=" in out


def test_the_smoke_test_names_the_cause(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import smoke

    def refuse(self: object, *args: object) -> None:
        raise PermissionError(13, "blocked")
    monkeypatch.setattr(mpoint.MultipointSocket, "send", refuse)
    assert smoke.main() == 1
    err = capsys.readouterr().err
    assert err.startswith("smoke: FAILED: PermissionError") and "winerror=" in err
