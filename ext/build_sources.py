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
from typing import List, Mapping, Tuple

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


# Cython's generated code is not ours to keep warning-free (GCC and clang).
_GCC_QUIET = ["-Wno-unused-function", "-Wno-unused-parameter",
              "-Wno-missing-field-initializers", "-Wno-unreachable-code"]


def build_flags(compiler_type: str, env: Mapping[str, str]) -> Tuple[List[str], List[str]]:
    """(compile args, link args) for a distutils compiler_type ("msvc";
    "unix" or "mingw32": GCC or clang) and the build switches in env:
      MPOINT_WERROR    warnings are errors (CI): -Werror / /WX
      MPOINT_DEBUG     no optimisation, debug info, asserts on:
                       -O0 -g -UNDEBUG / /Od /Zi /UNDEBUG (link /DEBUG)
      MPOINT_SANITIZE  ASan + UBSan (-fsanitize=address,undefined); MSVC has
                       ASan only (/fsanitize=address, Visual Studio 2019
                       16.9 and later), with debug info, no UBSan
    Warnings are always on (-Wall -Wextra / /W3); a user's newer compiler
    fails a build only when MPOINT_WERROR asks."""
    on = lambda name: bool(env.get(name))        # noqa: E731
    compile_args: List[str] = []
    link_args: List[str] = []
    if compiler_type == "msvc":
        compile_args += ["/W3"] + (["/WX"] if on("MPOINT_WERROR") else [])
        if on("MPOINT_SANITIZE"):
            compile_args += ["/fsanitize=address", "/Zi", "/Od"]
            link_args += ["/DEBUG", "/INCREMENTAL:NO"]
        elif on("MPOINT_DEBUG"):
            compile_args += ["/Od", "/Zi", "/UNDEBUG"]
            link_args += ["/DEBUG"]
        return compile_args, link_args
    compile_args += ["-Wall", "-Wextra"] + (["-Werror"] if on("MPOINT_WERROR") else [])
    compile_args += _GCC_QUIET
    if on("MPOINT_SANITIZE"):
        sanitize = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                    "-fno-sanitize-recover=undefined"]
        compile_args += sanitize
        link_args += sanitize
    elif on("MPOINT_DEBUG"):
        compile_args += ["-O0", "-g", "-UNDEBUG"]
    return compile_args, link_args


if __name__ == "__main__":
    which, plat = sys.argv[1], sys.argv[2]
    print("\n".join({"core": core, "lab": lab}[which](plat)))
