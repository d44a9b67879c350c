"""--help, explain, check and run --dry-run import none of torch, accelerate, lycoris, transformers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cli_helpers import CONFIGS

HEAVY = ("torch", "accelerate", "lycoris", "transformers")
PROBE = (
    "import sys, runpy\n"
    "sys.argv = ['loratrain'] + sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_module('loratrain', run_name='__main__')\n"
    "except SystemExit:\n"
    "    pass\n"
    "heavy = sorted(m for m in sys.modules if m.split('.')[0] in %r)\n"
    "print('HEAVY:' + ','.join(heavy), file=sys.stderr)\n" % (HEAVY,)
)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["explain", "network_dim"],
        ["explain", "--list"],
        ["check", "--no-preflight", str(CONFIGS / "pony-sdxl-locon.toml")],
        ["run", str(CONFIGS / "pony-sdxl-locon.toml"), "--dry-run"],
        ["run", str(CONFIGS / "sdxl-locon-2gpu.toml"), "--dry-run", "--json"],
    ],
    ids=lambda a: " ".join(a)[:40],
)
def test_light_commands_import_no_heavy_package(args):
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    line = [ln for ln in result.stderr.splitlines() if ln.startswith("HEAVY:")]
    assert line == ["HEAVY:"], result.stderr[-2000:]
