"""Build of mpoint's C core: picks the platform's C files by name.

Build switches (environment):
  MPOINT_SANITIZE=1   compile and link with ASan + UBSan (see .ci/run)
  MPOINT_DEBUG=1      -O0 -g, no NDEBUG
  MPOINT_WERROR=1     warnings are errors (.ci/run sets it)
  MPOINT_KQUEUE_SHIM=1  Linux test build only: adds the macOS kqueue poller
                      (ext/posix/kqueue_darwin.c, unchanged) over an epoll
                      emulation of kqueue (tests/kqueue_shim), listed first
"""
import os
import sys
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ext"))
import build_sources as sources  # noqa: E402  (ext/build_sources.py: the file lists, read by .ci/ too)

CORE = sources.core(sys.platform)
LAB = sources.lab(sys.platform)
LIBRARIES = sources.libraries(sys.platform)
INCLUDE_DIRS = ["ext"]
if os.environ.get("MPOINT_KQUEUE_SHIM") and sys.platform.startswith("linux"):
    SHIM = ["ext/posix/kqueue_darwin.c", "tests/kqueue_shim/kqueue_epoll.c",
            "tests/kqueue_shim/pollers.c"]
    CORE = [f for f in CORE if not f.endswith("pollers_linux.c")] + SHIM
    LAB = [f for f in LAB if not f.endswith("pollers_linux.c")] + SHIM
    INCLUDE_DIRS = ["tests/kqueue_shim"] + INCLUDE_DIRS     # its <sys/event.h>

compile_args, link_args = [], []
if sys.platform != "win32" or os.environ.get("CC", "").endswith("gcc"):
    compile_args += ["-Wall", "-Wextra"]
    if os.environ.get("MPOINT_WERROR"):     # CI's builds; a user's newer compiler never fails
        compile_args += ["-Werror"]
    # Cython's generated code is not ours to keep warning-free.
    compile_args += ["-Wno-unused-function", "-Wno-unused-parameter",
                     "-Wno-missing-field-initializers", "-Wno-unreachable-code"]
if os.environ.get("MPOINT_SANITIZE"):
    flags = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
             "-fno-sanitize-recover=undefined"]
    compile_args += flags
    link_args += flags
elif os.environ.get("MPOINT_DEBUG"):
    compile_args += ["-O0", "-g", "-UNDEBUG"]

DEPENDS = (glob("ext/*.h") + glob("ext/*/*.h") + glob("ext/*.pxi") + glob("ext/*.pxd")
           + glob("tests/kqueue_shim/*.[ch]") + glob("tests/kqueue_shim/sys/*.h"))


def extension(name, pyx, c_files, extra_includes=()):
    return Extension(name, sources=[pyx] + c_files,
                     include_dirs=list(extra_includes) + INCLUDE_DIRS, libraries=LIBRARIES,
                     extra_compile_args=compile_args, extra_link_args=link_args,
                     depends=DEPENDS + glob("ext/lab/*.h"))


# The library, and the lab's C reference loops apart from it: import mpoint
# loads only _core; python -m mpoint bench loads mpoint.lab._reference.
core = extension("mpoint._core", "ext/_core.pyx", CORE)
lab = extension("mpoint.lab._reference", "ext/lab/_reference.pyx", LAB, ["ext/lab"])

setup(ext_modules=cythonize([core, lab], language_level=3, include_path=["ext"],
                            compiler_directives={"embedsignature": True}))
