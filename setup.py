"""Build fastloop's Cython extensions against the system DPDK (found with pkg-config)."""
import os
import shlex
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
SHIM = "vendor/dpdk-shim"
SHIM_SOURCES = [f"{SHIM}/fl_shim.c", f"{SHIM}/fl_memif.c", f"{SHIM}/fl_tap.c"]
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
            name, [str(rel)],
            include_dirs=[SHIM],
            define_macros=macros,
            extra_compile_args=cflags + ["-O2", "-Wno-unused-function",
                                         "-Wno-deprecated-declarations"],
            extra_link_args=libs,
        ))
    return cythonize(exts, language_level=3, nthreads=os.cpu_count() or 1,
                     compiler_directives={"embedsignature": True},
                     compile_time_env={}, annotate=bool(os.environ.get("FASTLOOP_ANNOTATE")))


class BuildExtWithShim(build_ext):
    """Compiles the C shim once, before the extensions, and links that object into each.

    Listing the shim among every extension's sources made `-j N` compile it N times into the
    same build/temp path at once: an extension could link while another rewrote the object,
    and the CI once got modules without fl_port_close_now (undefined symbol at import).
    """

    def build_extensions(self):
        first = self.extensions[0]
        objects = self.compiler.compile(
            SHIM_SOURCES, output_dir=self.build_temp, macros=first.define_macros,
            include_dirs=first.include_dirs, extra_postargs=first.extra_compile_args,
            depends=[f"{SHIM}/fl_shim.h", f"{SHIM}/fl_memif.h", f"{SHIM}/fl_tap.h"])
        for ext in self.extensions:
            ext.extra_objects = list(objects)
            ext.depends = list(ext.depends) + SHIM_SOURCES + objects
        super().build_extensions()


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExtWithShim})
