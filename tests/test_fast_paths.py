"""--help, explain, check and run --dry-run import none of torch, accelerate, lycoris, transformers."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import CONFIGS, PROBE, ROOT


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["explain", "network_dim"],
        ["explain", "--list"],
        ["check", "--no-preflight", str(CONFIGS / "pony-sdxl-locon.toml")],
        ["run", str(CONFIGS / "pony-sdxl-locon.toml"), "--dry-run"],
        ["run", str(CONFIGS / "sdxl-locon-2gpu.toml"), "--dry-run", "--json"],
        ["doctor", str(CONFIGS / "sdxl-lora-minimal.toml")],  # torch is imported in the probe's process only
        ["fit", str(CONFIGS / "pony-sdxl-locon.toml"), "--gpu", "h200"],
        ["fit", str(CONFIGS / "sdxl-lokr.toml"), "--vram", "8", "--json"],
        ["diagnose", str(ROOT / "tests" / "data" / "failure_logs" / "oom-sdscripts-725.log"), "--json"],
    ],
    ids=lambda a: " ".join(a)[:40],
)
def test_light_commands_import_no_heavy_package(args):
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    line = [ln for ln in result.stderr.splitlines() if ln.startswith("HEAVY:")]
    assert line == ["HEAVY:"], result.stderr[-2000:]


def _core_distributions() -> set[str]:
    """loratrain's own requirements without extras, and everything they require in turn."""
    import re
    from importlib import metadata

    def requires(name: str) -> list[str]:
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            return []
        out = []
        for req in reqs:
            if "extra ==" in req or "extra==" in req:
                continue
            marker = req.split(";", 1)[1] if ";" in req else ""
            if "python_version < '3.11'" in marker.replace('"', "'") and sys.version_info >= (3, 11):
                continue
            out.append(re.split(r"[ <>=!~;\[(]", req, maxsplit=1)[0].lower().replace("_", "-"))
        return out

    seen, todo = set(), ["loratrain"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(requires(name))
    return seen


MODULE_PROBE = (
    "import sys, runpy, sysconfig\n"
    "sys.argv = ['loratrain'] + sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_module('loratrain', run_name='__main__')\n"
    "except SystemExit:\n"
    "    pass\n"
    "site = sysconfig.get_paths()['purelib']\n"
    "names = sorted({n.split('.')[0] for n, m in list(sys.modules.items())\n"
    "                if (getattr(m, '__file__', None) or '').startswith(site)})\n"
    "print('MODULES:' + ','.join(names), file=sys.stderr)\n"
)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["explain", "algo"],
        ["run", str(CONFIGS / "pony-sdxl-locon.toml"), "--dry-run"],
        ["check", "--no-preflight", str(CONFIGS / "sdxl-lokr.toml")],
        ["fit", str(CONFIGS / "pony-sdxl-locon.toml"), "--gpu", "rtx3060"],
    ],
    ids=lambda a: " ".join(a)[:30],
)
def test_light_commands_need_only_the_declared_core_dependencies(args):
    """A plain `pip install loratrain` must be enough: nothing outside the core requirements is imported."""
    from importlib import metadata

    result = subprocess.run([sys.executable, "-c", MODULE_PROBE, *args], capture_output=True, text=True, timeout=60)
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("MODULES:"))
    modules = [m for m in line[len("MODULES:") :].split(",") if m and m not in ("loratrain", "_distutils_hack")]
    owners = metadata.packages_distributions()
    allowed = _core_distributions()
    stray = {
        m: owners.get(m) for m in modules if not any(d.lower().replace("_", "-") in allowed for d in owners.get(m, []))
    }
    assert stray == {}
