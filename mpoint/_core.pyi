# Stubs for the compiled core (ext/_core.pyx).  Values are judged in C;
# failures raise the mpoint.errors class for the platform's code.
from typing import Optional, Tuple, Union

JL_SENDER_ONLY: int
JL_RECEIVER_ONLY: int
JL_BOTH: int
WSA_FLAG_OVERLAPPED: int
WSA_FLAG_MULTIPOINT_C_ROOT: int
WSA_FLAG_MULTIPOINT_C_LEAF: int
WSA_FLAG_MULTIPOINT_D_ROOT: int
WSA_FLAG_MULTIPOINT_D_LEAF: int
WSA_FLAG_NO_HANDLE_INHERIT: int

_Address = Union[Tuple[str, int], Tuple[str, int, int], Tuple[str, int, int, int]]

def socket_open(family: int, type: int, proto: int, flags: int) -> int: ...
def interface_index(interface: Union[None, int, str]) -> int: ...
def join_leaf(fd: int, family: int, name: _Address, caller_len: int, has_sqos: bool,
              has_gqos: bool, flags: int, ifindex: int, source: Optional[str]) -> None: ...
def get_loopback(fd: int, family: int) -> bool: ...
def set_loopback(fd: int, family: int, on: bool) -> None: ...
def get_scope(fd: int, family: int) -> int: ...
def set_scope(fd: int, family: int, hops: int) -> None: ...
