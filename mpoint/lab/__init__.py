"""mpoint's lab: what proves the library, kept apart from it.

``import mpoint`` never loads this package.  It holds the benchmark
(``bench``, run as ``python -m mpoint bench``), the private network
namespace tooling every multicast test, demo and benchmark runs in
(``netns``), the demo (``demo``) and the plain C reference loops the
benchmarks measure against (the ``_reference`` extension).
"""
