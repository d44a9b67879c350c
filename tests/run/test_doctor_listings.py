"""`loratrain doctor` on environments nobody here wrote: pip listings pasted in public threads.

Each listing in tests/data/pip_listings/ (URL in its header) becomes a venv whose site-packages hold, for every
distribution it lists, a .dist-info with its version and top_level.txt and an importable stub module; torch and
accelerate are stubs that answer like the real ones on a machine without a GPU (their real builds for those
versions cannot be installed here). The real doctor probe runs in that interpreter against sd-scripts 48d368f's
real requirements.txt. A listing that is an excerpt shows what is absent only between its first and last name
(pip sorts by name); requirements outside that range are installed at the pin, and torch at 2.6.0+cu124.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import BASE, FIXTURE_SD_SCRIPTS, PINS, REQUIREMENTS, ROOT, run_cli, write_metadata, write_stub

from loratrain.launch.requirements import OPENCV, key, use_of

LISTINGS = ROOT / "tests" / "data" / "pip_listings"
NOT_SHOWN_TORCH = "2.6.0+cu124"

_FREEZE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")
_AT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*) @ \S+$")
_TABLE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s+(\d[^\s]*)(?:\s+\S.*)?$")


@dataclass
class Listing:
    path: Path
    source: str
    complete: bool
    dists: dict[str, str]  # name as listed -> version

    def shown(self, dist: str) -> bool:
        """Whether the listing would show `dist` if it were installed (complete, or inside the excerpt's range)."""
        if self.complete:
            return True
        names = sorted(key(d) for d in self.dists)
        return names[0] <= key(dist) <= names[-1]


def read_listing(path: Path) -> Listing:
    """A listing file: its header, then `name==version`, `name @ url` or `name  version [location]` lines; prompts,
    table headers, editable installs (`-e ...`) and other text are not distributions."""
    source, complete, dists = "", False, {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("# source: "):
            source = raw.split(": ", 1)[1]
        elif raw.startswith("# shown: "):
            complete = raw.startswith("# shown: complete")
        elif raw.startswith("#") or raw.startswith("-e "):
            continue
        elif m := _FREEZE.match(raw.strip()):
            dists[m.group(1)] = m.group(2)
        elif m := _AT.match(raw.strip()):
            dists[m.group(1)] = "0"  # a local build: pip freeze shows its path, not its version
        elif (m := _TABLE.match(raw.rstrip())) and m.group(1) not in ("Package", "Version"):
            dists[m.group(1)] = m.group(2)
    return Listing(path, source, complete, dists)


def module_of(dist: str) -> str:
    if key(dist) in OPENCV:
        return "cv2"
    if key(dist) == "pillow":
        return "PIL"
    return use_of(dist).module


def torch_stub(version: str) -> str:
    local = version.split("+", 1)[1] if "+" in version else ""
    cuda = f"{local[2:-1]}.{local[-1]}" if re.fullmatch(r"cu\d{3,}", local) else None
    return (
        f"__version__ = {version!r}\n"
        "class _Version:\n"
        f"    cuda = {cuda!r}\n"
        "version = _Version()\n"
        "class _Cuda:\n"
        "    @staticmethod\n"
        "    def is_available():\n"
        "        return False\n"
        "cuda = _Cuda()\n"
        "from . import optim\n"
    )


def listing_env(root: Path, listing: Listing) -> str:
    """A venv holding exactly the listed distributions (and, outside an excerpt's range, the pinned requirements)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, capture_output=True)
    site = next((root / "lib").glob("python3*/site-packages"))
    wanted = dict(listing.dists)
    for dist, req in PINS.items():
        if not listing.shown(dist):
            wanted.setdefault(dist, req.pin or "1.0")
    for dist in ("torch", "accelerate"):
        if not listing.shown(dist):
            wanted.setdefault(dist, NOT_SHOWN_TORCH if dist == "torch" else PINS["accelerate"].pin or "1.0")
    stdlib = set(sys.stdlib_module_names)
    for dist, version in wanted.items():
        module = module_of(dist)
        if key(dist) == "torch":
            write_stub(site, dist, version, "torch", torch_stub(version))
            (site / "torch" / "optim.py").write_text("class AdamW:\n    pass\n")
        elif module in stdlib or not module.isidentifier():
            write_metadata(site, dist, version)  # a backport named like the standard module: nothing to import
        else:
            write_stub(site, dist, version, module)
    return str(root / "bin" / "python")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sd") / "sd-scripts"
    shutil.copytree(FIXTURE_SD_SCRIPTS, folder)
    shutil.copy(REQUIREMENTS, folder / "requirements.txt")
    return folder


def doctor_on(tmp_path: Path, name: str, checkout: Path) -> tuple[int, dict, str]:
    python = listing_env(tmp_path / "venv", read_listing(LISTINGS / name))
    config = tmp_path / "run.toml"
    config.write_text(f'python = "{python}"\nsd_scripts = "{checkout}"\n' + BASE)
    done = run_cli("doctor", str(config), "--json", env={"HOME": str(tmp_path)}, timeout=300)
    return done.returncode, json.loads(done.stdout), python


def errors_of(result: dict) -> dict[str, str]:
    """requirement or check name -> the fix its error line ends with."""
    out = {}
    for line in result["errors"]:
        m = re.search(r"sd_scripts: (\S+)", line) or re.search(r": (\S+)", line)
        out[m.group(1) if m else line] = line[line.rindex("(") + 1 : -1]
    return out


def warned(result: dict) -> set[str]:
    """The requirements with a warning (a version other than the pin's major.minor)."""
    return {c["name"].removeprefix("requirement ") for c in result["checks"] if c["status"] == "warning"} - {
        "tokenizers"  # this config's own tokenizer_cache_dir warning, not the environment's
    }


def pip(spec: str) -> str:
    return f"PY -m pip install {spec}"


# What doctor says of each environment: (errors: requirement -> the fix, the requirements that warn). Every error
# is a module sdxl_train_network.py imports at start, absent where the listing would show it; every warning a
# version whose major.minor is not the pin's. No listing is refused for drift, for an unused pin (ftfy, rich,
# sentencepiece), for an optimizer package, or for which OpenCV build provides cv2.
EXPECTED: dict[str, tuple[dict[str, str], set[str]]] = {
    # A GUI venv of mid-2023: opencv-python 4.7 and opencv-python-headless 4.8 both provide cv2 (met, older);
    # sd-scripts 48d368f's train_util imports imagesize, which this venv lacks.
    "windows-kohya-gui-venv-2023.txt": (
        {"imagesize": pip("imagesize==1.4.1")},
        {"accelerate", "diffusers", "einops", "huggingface-hub", "opencv-python", "safetensors", "transformers"}
        | {"voluptuous"},
    ),
    # The same GUI's venv months later (excerpt o..s): older OpenCV and safetensors; rich and sentencepiece unused.
    "kohya-gui-windows-issue-1683.txt": ({}, {"opencv-python", "safetensors"}),
    # A diffusion venv (a..i): a dev diffusers newer than the pin, older accelerate and huggingface-hub.
    "easytext-pip-list-issue-6.txt": ({}, {"accelerate", "diffusers", "huggingface-hub"}),
    # autotrain (a..c): accelerate 0.26.
    "autotrain-pip-list-diffusion-fast-11.txt": ({}, {"accelerate"}),
    # opencv-python and opencv-python-headless 4.11 side by side: cv2 is met, a newer minor than the pin.
    "both-opencv-builds-inspire-3.txt": ({}, {"opencv-python"}),
    # A T4 conda base (a..f): no einops, which sd-scripts' U-Net imports.
    "t4-pip-freeze-trl-226.txt": ({"einops": pip("einops==0.7.0")}, {"accelerate", "diffusers"}),
    # Colab (o..p): its excerpt starts at opencv-python-headless, so whether opencv-python is there is not shown.
    "colab-t4-pip-list-blt-101.txt": ({}, set()),
    # A plain Docker image (a..j): none of sd-scripts' packages in that range.
    "docker-dlc-pip-list-4345.txt": (
        {
            "diffusers": pip("diffusers==0.32.1"),
            "einops": pip("einops==0.7.0"),
            "huggingface-hub": pip("huggingface-hub==0.34.3"),
            "imagesize": pip("imagesize==1.4.1"),
        },
        set(),
    ),
    # LLM and 3-D research venvs (a..f): no diffusers; newer einops, older or newer accelerate.
    "research-pip-freeze-stream3r-18.txt": ({"diffusers": pip("diffusers==0.32.1")}, {"accelerate", "einops"}),
    "llamafactory-pip-list-4856.txt": ({"diffusers": pip("diffusers==0.32.1")}, {"accelerate", "einops"}),
    # A ComfyUI venv (a..a): accelerate 0.34.
    "comfyui-pip-list-flux-accelerator-2.txt": ({}, {"accelerate"}),
}


def test_every_listing_has_its_url_and_an_expectation():
    files = sorted(p.name for p in LISTINGS.glob("*.txt"))
    assert len(files) >= 10 and files == sorted(EXPECTED)
    for name in files:
        listing = read_listing(LISTINGS / name)
        assert listing.source.startswith("https://github.com/"), name
        assert len(listing.dists) >= 20, (name, len(listing.dists))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_doctor_on_a_public_listing(tmp_path, checkout, name):
    code, result, python = doctor_on(tmp_path, name, checkout)
    errors, warnings = EXPECTED[name]
    found = errors_of(result)
    assert {k: v.replace(python, "PY") for k, v in found.items()} == errors, result["errors"]
    assert code == (2 if errors else 0)
    assert warned(result) == warnings, result["checks"]
    assert not any("cv2" in e for e in result["errors"])  # whichever OpenCV build a listing has, cv2 is met


def test_the_listing_parser_reads_freeze_list_and_url_lines():
    t4 = read_listing(LISTINGS / "t4-pip-freeze-trl-226.txt")
    assert t4.dists["accelerate"] == "0.17.1" and t4.dists["certifi"] == "0"
    inspire = read_listing(LISTINGS / "both-opencv-builds-inspire-3.txt")
    assert inspire.dists["openpi"] == "0.1.0" and inspire.dists["opencv-python-headless"] == "4.11.0.86"
    gui = read_listing(LISTINGS / "windows-kohya-gui-venv-2023.txt")
    assert gui.complete and "library" not in gui.dists and gui.dists["torch"] == "2.0.1+cu118"
    assert not inspire.complete and inspire.shown("opencv-python") and not inspire.shown("torch")
