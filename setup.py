"""Build fastloop's Cython extensions against the system DPDK (found with pkg-config)."""
import os
import shlex
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).parent
SHIM = "vendor/dpdk-shim"
DPDK_PACKAGES = "dpdk libdpdk-dev pkg-config"


def pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config", *args, "libdpdk"], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        sys.exit("fastloop needs DPDK (22.11 or newer) and pkg-config to build, and found no "
                 "`libdpdk` with pkg-config.\nOn Debian/Ubuntu: "
                 f"sudo apt-get install {DPDK_PACKAGES}")
    return shlex.split(out)


def extensions():
    from Cython.Build import cythonize

    cflags = pkg_config("--cflags")    # includes -march=corei7: DPDK's inline memcpy needs SSSE3
    libs = pkg_config("--libs") + ["-lrte_net_ring", "-lrte_bus_vdev"]
    debug = os.environ.get("FASTLOOP_DEBUG", "0") not in ("", "0")
    macros = [("FL_DEBUG", "1" if debug else "0"), ("ALLOW_EXPERIMENTAL_API", None)]
    exts = []
    for pyx in sorted(HERE.glob("fastloop/**/*.pyx")):
        rel = pyx.relative_to(HERE)
        name = ".".join(rel.with_suffix("").parts)
        exts.append(Extension(
            name, [str(rel), f"{SHIM}/fl_shim.c", f"{SHIM}/fl_memif.c"],
            include_dirs=[SHIM],
            define_macros=macros,
            extra_compile_args=cflags + ["-O2", "-Wno-unused-function",
                                         "-Wno-deprecated-declarations"],
            extra_link_args=libs,
        ))
    return cythonize(exts, language_level=3, nthreads=os.cpu_count() or 1,
                     compiler_directives={"embedsignature": True},
                     compile_time_env={}, annotate=bool(os.environ.get("FASTLOOP_ANNOTATE")))


setup(ext_modules=extensions())
