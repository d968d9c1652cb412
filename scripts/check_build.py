"""Imports every compiled module of fastloop, so a broken build fails here and not as 38
collection errors; `--debug` / `--release` also check which build it is."""
import importlib
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts)
                 for p in (ROOT / "fastloop").rglob("*.pyx"))
for name in modules:
    importlib.import_module(name)
from fastloop.dev.eal import debug_build  # noqa: E402

want = {"--debug": True, "--release": False}.get(sys.argv[1] if len(sys.argv) > 1 else "")
if want is not None and debug_build() != want:
    sys.exit(f"check_build: expected the {'debug' if want else 'release'} build")
print(f"check_build: {len(modules)} modules import ({'debug' if debug_build() else 'release'})")
