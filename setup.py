"""Build of mpoint's C core: picks the platform's C files by name.

Build switches (environment):
  MPOINT_SANITIZE=1   compile and link with ASan + UBSan (see .ci/run); MSVC: ASan
  MPOINT_DEBUG=1      -O0 -g, no NDEBUG; MSVC: /Od /Zi
  MPOINT_WERROR=1     warnings are errors (.ci/run sets it): -Werror; MSVC: /WX
  (the flags per compiler: ext/build_sources.py build_flags)
  MPOINT_KQUEUE_SHIM=1  Linux test build only: adds the macOS kqueue poller
                      (ext/posix/kqueue_darwin.c, unchanged) over an epoll
                      emulation of kqueue (tests/kqueue_shim), listed first
"""
import os
import sys
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

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


class BuildExt(build_ext):
    """Flags by the compiler that really builds (MSVC or GCC/clang, also
    mingw-w64 on Windows): ext/build_sources.py build_flags."""

    def build_extensions(self):
        compile_args, link_args = sources.build_flags(self.compiler.compiler_type, os.environ)
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + list(ext.extra_compile_args or [])
            ext.extra_link_args = link_args + list(ext.extra_link_args or [])
        super().build_extensions()


DEPENDS = (glob("ext/*.h") + glob("ext/*/*.h") + glob("ext/*.pxi") + glob("ext/*.pxd")
           + glob("tests/kqueue_shim/*.[ch]") + glob("tests/kqueue_shim/sys/*.h"))


def extension(name, pyx, c_files, extra_includes=()):
    return Extension(name, sources=[pyx] + c_files,
                     include_dirs=list(extra_includes) + INCLUDE_DIRS, libraries=LIBRARIES,
                     depends=DEPENDS + glob("ext/lab/*.h"))


# The library, and the lab's C reference loops apart from it: import mpoint
# loads only _core; python -m mpoint bench loads mpoint.lab._reference.
core = extension("mpoint._core", "ext/_core.pyx", CORE)
lab = extension("mpoint.lab._reference", "ext/lab/_reference.pyx", LAB, ["ext/lab"])

setup(cmdclass={"build_ext": BuildExt},
      ext_modules=cythonize([core, lab], language_level=3, include_path=["ext"],
                            compiler_directives={"embedsignature": True}))
