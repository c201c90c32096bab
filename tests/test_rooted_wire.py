"""The rooted protocol's messages (mpoint.rooted_wire, docs/rooted-protocol.md):
every message type through encode -> parse / FrameReader (whole, byte by
byte, several frames in a row), one test per row of the doc's "Malformed
and hostile input" table, and properties over arbitrary bytes: parse only
ever returns a message, raises ProtocolError or ValueError (incomplete), and
a reader never holds more than one frame.  No test here opens a socket."""
from __future__ import annotations

import struct
from typing import List, Optional, Tuple

import pytest

from mpoint import rooted_wire as wire
from mpoint.rooted_wire import (ACCEPT, ADMIT, D_LEAF, D_ROOT, HEADER_SIZE, INVITE, JOIN,
                                MAX_PAYLOAD, MAX_QOS, MAX_TEXT, MAX_USER_DATA, MULTICAST, REJECT,
                                UNICAST, FrameReader, ProtocolError, parse)
from rooted_frames import (CODES, GOOD_JOIN, WSAEINVAL, WSAEMSGSIZE, WSAVERNOTSUPPORTED,
                           accept_payload, admit_payload, arbitrary, frame, messages,
                           multicast_v6, reject_payload, request_block, session_block)
from support import HealthCheck, given, settings, st

pytestmark = pytest.mark.offline

HELD_AT_MOST = HEADER_SIZE + MAX_PAYLOAD

SESSION_V4 = wire.Session(MULTICAST, D_ROOT, 4, 1, "239.255.1.2", 40000, 40001)
SESSION_V6 = wire.Session(MULTICAST, D_LEAF, 6, 0, "ff15::4d52:9c40", 40000, 40000)
SESSION_UNICAST = wire.Session(UNICAST, D_ROOT, 4, 1, "", 0, 5000)


def code_of(data: bytes) -> Optional[int]:
    """The ProtocolError code parse raises for ``data`` (fails if it parses)."""
    with pytest.raises(ProtocolError) as info:
        parse(data)
    assert info.value.text and str(info.value) == info.value.text
    return info.value.code


def feed_bytewise(data: bytes) -> Tuple[List[wire.Message], FrameReader]:
    """Every message of ``data`` through one reader, one byte at a time,
    checking need() and the bound at every step."""
    reader, out = FrameReader(), []
    header_left, payload_left = HEADER_SIZE, None
    for i in range(len(data)):
        need = reader.need()
        assert need == (header_left if payload_left is None else payload_left)
        assert 0 < need <= MAX_PAYLOAD
        reader.feed(data[i:i + 1])
        assert len(reader._buf) <= HELD_AT_MOST
        if payload_left is None:
            header_left -= 1
            if header_left == 0:
                payload_left = struct.unpack(">I", data[i - 3:i + 1])[0]
        else:
            payload_left -= 1
        if reader.done():
            assert payload_left == 0
            out.append(reader.message())
            assert not reader.done() and reader.need() == HEADER_SIZE
            header_left, payload_left = HEADER_SIZE, None
    return out, reader


# -- round trips --------------------------------------------------------------------

def join_msg(caller: bytes = b"hello", sqos: bytes = b"", gqos: bytes = b"", plane: int = D_ROOT,
             role: int = 4, port: int = 5555) -> Tuple[bytes, wire.Message]:
    return (wire.request(JOIN, plane, role, port, caller, sqos, gqos),
            wire.Request(JOIN, 1, plane, role, port, caller, sqos, gqos, None))


def invite_msg(session: wire.Session = SESSION_V4, caller: bytes = b"root",
               sqos: bytes = b"", gqos: bytes = b"", role: int = 2
               ) -> Tuple[bytes, wire.Message]:
    return (wire.request(INVITE, session.plane, role, 0, caller, sqos, gqos, session=session),
            wire.Request(INVITE, 1, session.plane, role, 0, caller, sqos, gqos, session))


EXAMPLES = {
    "join": join_msg(),
    "join-empty": join_msg(b"", port=0, role=1, plane=D_LEAF),
    "join-largest": join_msg(b"\xaa" * MAX_USER_DATA, b"s" * MAX_QOS, b"g" * MAX_QOS),
    "invite-v4": invite_msg(),
    "invite-v6": invite_msg(SESSION_V6, b"", b"q", b"", role=4),
    "invite-unicast": invite_msg(SESSION_UNICAST, role=1),
    "invite-largest": invite_msg(SESSION_V6, b"\x00" * MAX_USER_DATA, b"s" * MAX_QOS,
                                 b"g" * MAX_QOS),
    "admit": (wire.admit(SESSION_V4, b"welcome"), wire.Admit(1, SESSION_V4, b"welcome")),
    "admit-unicast": (wire.admit(SESSION_UNICAST, b""), wire.Admit(1, SESSION_UNICAST, b"")),
    "admit-largest": (wire.admit(SESSION_V6, b"c" * MAX_USER_DATA),
                      wire.Admit(1, SESSION_V6, b"c" * MAX_USER_DATA)),
    "accept": (wire.accept(6000, b"yes"), wire.Accept(1, 6000, b"yes")),
    "accept-largest": (wire.accept(65535, b"c" * MAX_USER_DATA),
                       wire.Accept(1, 65535, b"c" * MAX_USER_DATA)),
    "reject": (wire.reject(10061, "go away"), wire.Reject(10061, "go away")),
    "reject-empty": (wire.reject(0, ""), wire.Reject(0, "")),
    "reject-utf8": (wire.reject(10022, "d\u00e9j\u00e0 vu \u2603"),
                    wire.Reject(10022, "d\u00e9j\u00e0 vu \u2603")),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_message_type_round_trips(name: str) -> None:
    data, expected = EXAMPLES[name]
    assert len(data) - HEADER_SIZE <= MAX_PAYLOAD
    assert parse(data) == (expected, len(data))
    assert feed_bytewise(data)[0] == [expected]
    assert type(expected).__name__.upper() in ("REQUEST", wire.TYPE_NAMES[data[3]])


def test_frames_in_a_row_through_one_reader() -> None:
    """The reader is ready for the next frame after each message."""
    names = sorted(EXAMPLES)
    stream = b"".join(EXAMPLES[n][0] for n in names)
    messages, reader = feed_bytewise(stream)
    assert messages == [EXAMPLES[n][1] for n in names]
    assert reader.need() == HEADER_SIZE and not reader.done()


def test_parse_stops_at_the_frame_end() -> None:
    """What follows a frame (side traffic) is never consumed."""
    data, expected = EXAMPLES["join"]
    for tail in (b"x", b"MR\x01\x01", data, b"\xff" * 100):
        assert parse(data + tail) == (expected, len(data))


def test_the_reader_takes_no_byte_past_its_frame() -> None:
    data, _ = EXAMPLES["accept"]
    reader = FrameReader()
    with pytest.raises(ValueError, match="past the current frame"):
        reader.feed(data[:HEADER_SIZE + 1])            # one byte of payload too early
    reader.feed(data[:HEADER_SIZE])
    with pytest.raises(ValueError, match="past the current frame"):
        reader.feed(data[HEADER_SIZE:] + b"!")
    with pytest.raises(ValueError, match="not complete"):
        reader.message()
    reader.feed(data[HEADER_SIZE:])
    assert reader.done() and isinstance(reader.message(), wire.Accept)


def test_a_newer_peer_is_understood() -> None:
    """A request naming a higher protocol version is read (the answer picks
    the lower of the two); the framing version stays 1."""
    msg, used = parse(frame(JOIN, request_block(version=7, caller=b"v7")))
    assert isinstance(msg, wire.Request) and msg.version == 7 and msg.caller_data == b"v7"


def test_reject_text_is_cut_at_a_character_boundary() -> None:
    data = wire.reject(10061, "\u00e9" * 200 + "tail")   # 404 bytes of UTF-8
    msg, _ = parse(data)
    assert isinstance(msg, wire.Reject)
    assert msg.text == "\u00e9" * (MAX_TEXT // 2)
    odd = wire.reject(10061, "a" + "\u00e9" * 200)       # the cut would split a character
    msg, _ = parse(odd)
    assert msg.text == "a" + "\u00e9" * ((MAX_TEXT - 1) // 2)  # type: ignore[union-attr]


# -- the "Malformed and hostile input" table, row by row ------------------------------

@pytest.mark.parametrize("magic", [b"XX", b"mr", b"RM", b"\0\0", b"GE", b"M\0", b"\xffR"])
def test_wrong_magic_is_not_a_peer(magic: bytes) -> None:
    """Row 1: wrong magic -> reset without an answer (code None)."""
    assert code_of(magic + GOOD_JOIN[2:]) is None


def test_wrong_magic_is_known_from_the_header_alone() -> None:
    """An HTTP request (say) is refused at its eighth byte, nothing more read."""
    reader = FrameReader()
    reader.feed(b"GET / H")
    with pytest.raises(ProtocolError) as info:
        reader.feed(b"T")
    assert info.value.code is None


@pytest.mark.parametrize("version", [0, 2, 3, 0x80, 255])
def test_unknown_framing_version(version: int) -> None:
    """Row 2: REJECT WSAVERNOTSUPPORTED, even for a well-formed payload."""
    assert code_of(frame(JOIN, request_block(), version=version)) == WSAVERNOTSUPPORTED


@pytest.mark.parametrize("kind", [0, 6, 7, 0x7F, 255])
def test_unknown_message_type(kind: int) -> None:
    """Row 3: REJECT WSAEINVAL."""
    assert code_of(frame(kind, request_block())) == WSAEINVAL


@pytest.mark.parametrize("length", [MAX_PAYLOAD + 1, 65536, 2**31, 2**32 - 1])
def test_length_field_above_max_payload(length: int) -> None:
    """Row 4, the length field: WSAEMSGSIZE from the header alone, before
    any byte of the payload is taken."""
    header = frame(JOIN, b"", length=length)
    assert code_of(header) == WSAEMSGSIZE
    reader = FrameReader()
    reader.feed(header[:-1])
    with pytest.raises(ProtocolError) as info:
        reader.feed(header[-1:])
    assert info.value.code == WSAEMSGSIZE and len(reader._buf) == HEADER_SIZE


def test_length_field_of_exactly_max_payload_is_read() -> None:
    """The boundary: MAX_PAYLOAD is allowed (and then must add up)."""
    data = frame(JOIN, request_block(caller=b"x" * (MAX_PAYLOAD - 12), c=MAX_PAYLOAD - 12))
    assert len(data) == HEADER_SIZE + MAX_PAYLOAD
    assert code_of(data) == WSAEMSGSIZE          # caller data above MAX_USER_DATA
    reader, at = FrameReader(), 0
    while not reader.done():
        piece = data[at:at + min(997, reader.need())]
        reader.feed(piece)
        at += len(piece)
        assert len(reader._buf) <= HELD_AT_MOST
    assert at == len(data)
    with pytest.raises(ProtocolError) as info:
        reader.message()
    assert info.value.code == WSAEMSGSIZE


OVERSIZED = {
    "join-caller": frame(JOIN, request_block(caller=b"c" * (MAX_USER_DATA + 1))),
    "join-caller-65535": frame(JOIN, request_block(c=65535)),      # announced, not sent
    "join-sqos": frame(JOIN, request_block(sqos=b"s" * (MAX_QOS + 1))),
    "join-gqos": frame(JOIN, request_block(gqos=b"g" * (MAX_QOS + 1))),
    "join-gqos-announced": frame(JOIN, request_block(g=MAX_QOS + 1)),
    "invite-caller": frame(INVITE, request_block(c=MAX_USER_DATA + 1) + session_block()),
    "invite-sqos": frame(INVITE, request_block(sqos=b"s" * (MAX_QOS + 1)) + session_block()),
    "admit-callee": frame(ADMIT, admit_payload(callee=b"c" * (MAX_USER_DATA + 1))),
    "admit-callee-announced": frame(ADMIT, admit_payload(n=65535)),
    "accept-callee": frame(ACCEPT, accept_payload(callee=b"c" * (MAX_USER_DATA + 1))),
    "reject-text": frame(REJECT, reject_payload(b"t" * (MAX_TEXT + 1))),
}


@pytest.mark.parametrize("name", sorted(OVERSIZED))
def test_user_data_or_qos_above_its_maximum(name: str) -> None:
    """Row 4, the fields: WSAEMSGSIZE, whether the bytes follow or not."""
    assert code_of(OVERSIZED[name]) == WSAEMSGSIZE


def test_user_data_and_qos_at_their_maximum_are_read() -> None:
    msg, _ = parse(frame(JOIN, request_block(caller=b"c" * MAX_USER_DATA, sqos=b"s" * MAX_QOS,
                                             gqos=b"g" * MAX_QOS)))
    assert isinstance(msg, wire.Request)
    assert (len(msg.caller_data), len(msg.sqos), len(msg.gqos)) == (MAX_USER_DATA, MAX_QOS,
                                                                    MAX_QOS)
    msg, _ = parse(frame(REJECT, reject_payload(b"t" * MAX_TEXT)))
    assert msg == wire.Reject(10061, "t" * MAX_TEXT)


INCONSISTENT = {
    "join-empty": frame(JOIN, b""),
    "join-short-block": frame(JOIN, request_block()[:7]),
    "join-caller-short": frame(JOIN, request_block(caller=b"abcd", c=5)),
    "join-caller-long": frame(JOIN, request_block(caller=b"abcdef", c=5)),
    "join-qos-short": frame(JOIN, request_block(sqos=b"ab", s=3)),
    "join-trailing": frame(JOIN, request_block(caller=b"abc") + b"\0"),
    "join-with-session": frame(JOIN, request_block() + session_block()),
    "invite-no-session": frame(INVITE, request_block(caller=b"abc")),
    "invite-short-session": frame(INVITE, request_block() + session_block()[:23]),
    "invite-trailing": frame(INVITE, request_block() + session_block() + b"x"),
    "admit-empty": frame(ADMIT, b""),
    "admit-no-callee-length": frame(ADMIT, admit_payload()[:-2]),
    "admit-callee-short": frame(ADMIT, admit_payload(callee=b"abc", n=4)),
    "admit-trailing": frame(ADMIT, admit_payload(callee=b"abc") + b"\0"),
    "accept-empty": frame(ACCEPT, b""),
    "accept-callee-short": frame(ACCEPT, accept_payload(callee=b"ab", n=3)),
    "accept-trailing": frame(ACCEPT, accept_payload(callee=b"ab") + b"z"),
    "reject-empty": frame(REJECT, b""),
    "reject-text-short": frame(REJECT, reject_payload(b"no", n=3)),
    "reject-trailing": frame(REJECT, reject_payload(b"no") + b"!"),
}


@pytest.mark.parametrize("name", sorted(INCONSISTENT))
def test_field_lengths_that_do_not_add_up(name: str) -> None:
    """Row 5: REJECT WSAEINVAL."""
    assert code_of(INCONSISTENT[name]) == WSAEINVAL


BAD_VALUES = {
    **{f"join-role-{r}": frame(JOIN, request_block(role=r)) for r in (0, 3, 5, 8, 255)},
    **{f"join-plane-{p}": frame(JOIN, request_block(plane=p)) for p in (0, 3, 255)},
    "invite-role": frame(INVITE, request_block(role=6) + session_block()),
    "invite-plane": frame(INVITE, request_block(plane=0) + session_block()),
    **{f"transport-{t}": frame(ADMIT, admit_payload(session_block(transport=t)))
       for t in (0, 3, 255)},
    **{f"session-plane-{p}": frame(ADMIT, admit_payload(session_block(plane=p)))
       for p in (0, 3)},
    **{f"family-{f}": frame(ADMIT, admit_payload(session_block(family=f)))
       for f in (0, 2, 5, 10, 23, 255)},
    "unicast-family": frame(ADMIT, admit_payload(session_block(transport=UNICAST, family=0))),
    "group-not-multicast-v4": frame(ADMIT, admit_payload(session_block(group=bytes(
        [10, 0, 0, 1])))),
    "group-zero-v4": frame(ADMIT, admit_payload(session_block(group=bytes(4)))),
    "group-not-multicast-v6": frame(ADMIT, admit_payload(session_block(
        family=6, group=bytes(15) + b"\1"))),
    "group-v4-bytes-as-v6": frame(ADMIT, admit_payload(session_block(
        family=6, group=bytes([239, 1, 2, 3])))),
    "group-port-0": frame(ADMIT, admit_payload(session_block(gport=0))),
    "root-port-0": frame(ADMIT, admit_payload(session_block(rport=0))),
    "unicast-root-port-0": frame(ADMIT, admit_payload(session_block(transport=UNICAST,
                                                                    rport=0))),
    "invite-group-port-0": frame(INVITE, request_block() + session_block(
        family=6, group=multicast_v6(), gport=0)),
}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_unknown_role_plane_transport_or_family(name: str) -> None:
    """Row 6 (and the session block's other values): REJECT WSAEINVAL."""
    assert code_of(BAD_VALUES[name]) == WSAEINVAL


def test_protocol_version_zero_is_not_supported() -> None:
    """Not a row of the table: a request naming version 0 (none exists)
    is answered WSAVERNOTSUPPORTED, as an unknown framing version is."""
    assert code_of(frame(JOIN, request_block(version=0))) == WSAVERNOTSUPPORTED


def test_a_good_frame_of_each_builder_parses() -> None:
    """The builders above make valid frames unless told otherwise: each bad
    case differs from a good one only in what it names."""
    for data, kind in ((GOOD_JOIN, wire.Request),
                       (frame(INVITE, request_block() + session_block()), wire.Request),
                       (frame(INVITE, request_block() + session_block(
                           family=6, group=multicast_v6())), wire.Request),
                       (frame(ADMIT, admit_payload(callee=b"abc")), wire.Admit),
                       (frame(ADMIT, admit_payload(session_block(transport=UNICAST))),
                        wire.Admit),
                       (frame(ACCEPT, accept_payload(b"ab")), wire.Accept),
                       (frame(REJECT, reject_payload(b"no")), wire.Reject)):
        msg, used = parse(data)
        assert isinstance(msg, kind) and used == len(data)


@pytest.mark.parametrize("name", ["join", "invite-v6", "admit", "accept", "reject"])
def test_fewer_bytes_than_announced(name: str) -> None:
    """Row 7: an incomplete frame is no message yet (the engine resets it
    when the handshake time passes): every strict prefix is incomplete."""
    data, _ = EXAMPLES[name]
    for cut in range(len(data)):
        with pytest.raises(ValueError, match="incomplete"):
            parse(data[:cut])
    reader = FrameReader()
    reader.feed(data[:HEADER_SIZE])
    reader.feed(data[HEADER_SIZE:-1])
    assert not reader.done() and reader.need() == 1


def test_the_header_is_checked_before_the_payload() -> None:
    """Magic, then framing version, then type, then length: the first
    problem found is the one reported."""
    assert code_of(frame(9, b"", magic=b"XX", version=9, length=2**32 - 1)) is None
    assert code_of(frame(9, b"", version=9, length=2**32 - 1)) == WSAVERNOTSUPPORTED
    assert code_of(frame(9, b"", length=2**32 - 1)) == WSAEINVAL
    assert code_of(frame(JOIN, b"", length=2**32 - 1)) == WSAEMSGSIZE


# -- properties ------------------------------------------------------------------------

HYPOTHESIS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

@settings(max_examples=300, **HYPOTHESIS)
@given(messages(), st.lists(st.integers(1, 4000), max_size=20))
def test_round_trip_property(case: Tuple[bytes, wire.Message], cuts: List[int]) -> None:
    """Any message through encode -> parse, and through a reader fed in
    pieces of any size, is itself; nothing is consumed past it."""
    data, expected = case
    assert len(data) - HEADER_SIZE <= MAX_PAYLOAD
    assert parse(data + b"tail") == (expected, len(data))
    reader, at = FrameReader(), 0
    for n in cuts + [len(data)] * 3:
        piece = data[at:at + min(n, reader.need())]
        reader.feed(piece)
        at += len(piece)
        if reader.done():
            break
    assert at == len(data) and reader.message() == expected


@settings(max_examples=30, **HYPOTHESIS)
@given(st.lists(messages(), min_size=1, max_size=4))
def test_byte_by_byte_property(cases: List[Tuple[bytes, wire.Message]]) -> None:
    stream = b"".join(data for data, _ in cases)
    assert feed_bytewise(stream)[0] == [msg for _, msg in cases]


@settings(max_examples=1500, **HYPOTHESIS)
@given(arbitrary)
def test_parse_of_arbitrary_bytes(data: bytes) -> None:
    """A message, ProtocolError (a documented code) or ValueError
    (incomplete): never anything else."""
    try:
        msg, used = parse(data)
    except ProtocolError as exc:
        assert exc.code in CODES, exc.code
        return
    except ValueError as exc:
        assert str(exc) == "incomplete frame"
        return
    assert isinstance(msg, (wire.Request, wire.Admit, wire.Accept, wire.Reject))
    assert HEADER_SIZE <= used <= len(data)
    assert used == HEADER_SIZE + struct.unpack(">I", data[4:8])[0]


@settings(max_examples=400, **HYPOTHESIS)
@given(st.lists(arbitrary, min_size=1, max_size=6), st.lists(st.integers(1, 70000),
                                                             min_size=1, max_size=30))
def test_a_reader_never_holds_more_than_a_frame(chunks: List[bytes], sizes: List[int]) -> None:
    """A reader fed a stream in pieces as large as it allows holds at most
    HEADER_SIZE + MAX_PAYLOAD bytes, asks for no more than that, and ends
    each frame with a message or ProtocolError (then a new reader goes on)."""
    stream = b"".join(chunks) + struct.pack(">2sBBI", b"MR", 1, JOIN, MAX_PAYLOAD) + \
        b"\0" * MAX_PAYLOAD
    reader, at, i = FrameReader(), 0, 0
    while at < len(stream):
        need = reader.need()
        assert 0 < need <= MAX_PAYLOAD
        piece = stream[at:at + min(need, sizes[i % len(sizes)])]
        i += 1
        at += len(piece)
        try:
            reader.feed(piece)
            assert len(reader._buf) <= HELD_AT_MOST
            if reader.done():
                reader.message()
        except ProtocolError as exc:
            assert exc.code in CODES
            reader = FrameReader()
        assert len(reader._buf) <= HELD_AT_MOST
