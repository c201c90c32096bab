"""Which C files the build compiles, per platform: the one list that
setup.py, .ci/windows/test and .ci/macos/compile all read.

Platform code is chosen by file: ext/win/*.c on Windows, ext/posix/*.c on
POSIX without the other system's *_linux.c / *_darwin.c; the lab's C
reference loops (ext/lab/) are the same way.  Run as a script it prints
one extension's files for a platform:
    python ext/build_sources.py core|lab win32|darwin|linux
"""
import os
import sys
from glob import glob
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _rel(paths: List[str]) -> List[str]:
    return sorted(os.path.relpath(p, ROOT).replace(os.sep, "/") for p in paths)


def common() -> List[str]:
    """The portable files (not Cython output, which starts with _)."""
    return _rel([f for f in glob(os.path.join(HERE, "*.c"))
                 if not os.path.basename(f).startswith("_")])


def platform_files(folder: str, platform: str) -> List[str]:
    """folder's files for platform ("win32", "darwin", else Linux)."""
    base = os.path.join(ROOT, folder)
    if platform == "win32":
        return _rel(glob(os.path.join(base, "win", "*.c")))
    other = "linux.c" if platform == "darwin" else "darwin.c"
    return [f for f in _rel(glob(os.path.join(base, "posix", "*.c"))) if not f.endswith(other)]


def core(platform: str) -> List[str]:
    """mpoint._core's C files, beside ext/_core.pyx."""
    return common() + platform_files("ext", platform)


def lab(platform: str) -> List[str]:
    """mpoint.lab._reference's: the reference loops and the core's files
    they call, beside ext/lab/_reference.pyx."""
    return platform_files("ext/lab", platform) + core(platform)


def libraries(platform: str) -> List[str]:
    return ["ws2_32", "iphlpapi"] if platform == "win32" else []


if __name__ == "__main__":
    which, plat = sys.argv[1], sys.argv[2]
    print("\n".join({"core": core, "lab": lab}[which](plat)))
