"""sd-scripts' requirements.txt, judged by what a launch really needs: the module sd-scripts imports.

A pin names a distribution (`opencv-python==4.10.0.84`), but what sdxl_train_network.py needs is the module it
imports (`cv2`), which other distributions provide just as well (opencv-python-headless, the usual choice on
servers, where opencv-python cannot load without libGL). So a requirement is met when its module is there and
some installed distribution provides it; a version other than the pin is drift (a warning, never a refusal); a
distribution whose metadata is installed without its module, or a module with no distribution, is a broken
install and said so. What the SDXL LoRA path imports at start (read from sd-scripts 48d368f: train_network.py,
library/train_util.py, utils.py, config_util.py, model_util.py, sdxl_*.py, networks/lora.py) blocks a launch
when missing; what it imports only for some options, or never, does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

OPENCV = ("opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless", "opencv-python")


@dataclass(frozen=True)
class Requirement:
    dist: str  # as written (diffusers, opencv-python)
    pin: str | None  # the version after ==, else None
    line: str  # the requirement as written, without extras markers or comments

    @property
    def spec(self) -> str:
        """What `pip install` gets to restore the pinned version."""
        return f"{self.dist}=={self.pin}" if self.pin else self.dist


_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(?:(==|===|>=|<=|~=|!=|>|<)\s*([^\s;,#]+))?")


def parse_requirements(text: str) -> list[Requirement]:
    """Plain `name[extras]==version` lines; options (-e, -r, --index-url), comments and URLs are skipped."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-") or "://" in line or line.startswith("."):
            continue
        m = _REQ.match(line)
        if not m:
            continue
        pin = m.group(4) if m.group(3) in ("==", "===") else None
        out.append(Requirement(m.group(1), pin, line))
    return out


def read_requirements(folder: Path | None) -> list[Requirement] | None:
    """The requirements of the located sd-scripts checkout; None when it has no requirements.txt."""
    if folder is None:
        return None
    try:
        return parse_requirements((Path(folder) / "requirements.txt").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def key(dist: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", dist).lower()


# ---------------------------------------------------------------- what sd-scripts does with each requirement


@dataclass(frozen=True)
class Use:
    """What sd-scripts imports for one requirement, and whether a launch stops without it."""

    module: str
    role: str  # "start": imported when training starts; "option": only for `why`; "never": not on the SDXL path
    why: str = ""
    also: tuple[str, ...] = ()  # other distributions that provide the same module
    install: str = ""  # what to install when it is missing, "{pin}" for the pinned version; default: the pin
    load: bool = False  # import it in the probe (where a native library is what fails), not only locate it


_START = "start"
USES: dict[str, Use] = {
    "accelerate": Use("accelerate", _START),
    "transformers": Use("transformers", _START),
    "diffusers": Use("diffusers", _START),
    "einops": Use("einops", _START),
    "safetensors": Use("safetensors", _START),
    "toml": Use("toml", _START),
    "voluptuous": Use("voluptuous", _START),
    "huggingface-hub": Use("huggingface_hub", _START),
    "imagesize": Use("imagesize", _START),
    "numpy": Use("numpy", _START),
    # opencv-python needs libGL; the headless build has the same cv2 and loads on any server.
    "opencv-python": Use("cv2", _START, also=OPENCV[:3], install="opencv-python-headless=={pin}", load=True),
    "bitsandbytes": Use("bitsandbytes", "option", "the 8-bit and paged optimizers"),
    "lion-pytorch": Use("lion_pytorch", "option", "optimizer_type Lion"),
    "schedulefree": Use("schedulefree", "option", "the ScheduleFree optimizers"),
    "pytorch-optimizer": Use("pytorch_optimizer", "option", "pytorch_optimizer.* optimizers"),
    "prodigy-plus-schedule-free": Use("prodigyplus", "option", "prodigyplus.* optimizers"),
    "prodigyopt": Use("prodigyopt", "option", "optimizer_type Prodigy"),
    "tensorboard": Use("tensorboard", "option", "logging_dir"),
    "ftfy": Use("ftfy", "never", "sdxl_train_network.py does not import it"),
    "rich": Use("rich", "never", "without it sd-scripts logs in plain text"),
    "sentencepiece": Use("sentencepiece", "never", "only the T5 tokenizer of SD3/FLUX uses it"),
}

# requirements.txt pins packages sd-scripts imports only for some options; missing, they matter only then.
OPTIONAL_DISTS = {k: u.why for k, u in USES.items() if u.role == "option"}


def use_of(dist: str) -> Use:
    """The known use of a requirement; one this table does not know (another commit's) is judged by its name."""
    return USES.get(key(dist)) or Use(key(dist).replace("-", "_"), "unknown")


def probe_items(requirements: list[Requirement]) -> list[dict[str, Any]]:
    """What the doctor probe is asked for each requirement: its module, the distributions that may provide it."""
    items = []
    for req in requirements:
        use = use_of(req.dist)
        items.append({"dist": req.dist, "module": use.module, "also": list(use.also), "load": use.load})
    return items


# ---------------------------------------------------------------- judging one requirement


def release(version: str) -> tuple[int, ...]:
    """The release numbers of a version: `2.1.2+cu118` -> (2, 1, 2), `0.0.28.post3` -> (0, 0, 28)."""
    numbers = []
    for part in version.split("+", 1)[0].split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        numbers.append(int(m.group()))
        if m.group() != part:
            break
    return tuple(numbers)


def same_minor(a: str, b: str) -> bool:
    return release(a)[:2] == release(b)[:2]


@dataclass
class Verdict:
    """One requirement's check line, and the problem when there is one."""

    status: str  # ok / warning / error / skipped
    detail: str
    message: str = ""  # the problem's message (empty when none)
    fix: str = ""
    installed: dict[str, str] = field(default_factory=dict)  # the providing distributions found, with versions


def _install_spec(req: Requirement, use: Use) -> str:
    if use.install:
        return use.install.format(pin=req.pin) if req.pin else use.install.split("==")[0]
    return req.spec


def judge(req: Requirement, answer: Mapping[str, Any], python: str) -> Verdict:
    """One requirement against the probe's answer for it (`requirements[dist]`)."""
    use = use_of(req.dist)
    pip = f"{python} -m pip install"
    versions = {d: v for d, v in (answer.get("versions") or {}).items() if v}
    providers = {d: v for d, v in (answer.get("providers") or {}).items() if v}
    installed = {**providers, **versions}
    found = bool(answer.get("module_found"))
    loaded = answer.get("import") or {}
    blocking = use.role == _START
    where = f"{req.dist} (in sd-scripts' requirements.txt)"
    if found and not installed:
        return Verdict(
            "warning",
            f"{use.module} is there without any installed distribution",
            f"{use.module} imports in {python}, but no installed distribution provides it ({req.dist} is pinned): "
            "a copied folder or a broken install; pip cannot upgrade or remove it",
            f"{pip} --force-reinstall {_install_spec(req, use)}",
        )
    if not found and versions:
        dist, have = next(iter(versions.items()))
        message = f"{dist} {have} is installed, but its module {use.module} is missing: a broken install"
        return Verdict(
            "error" if blocking else "warning",
            message,
            message + ("" if blocking else f" (only {use.why} need it)" if use.why else ""),
            f"{pip} --force-reinstall {dist}=={have}",
            installed,
        )
    if not found:
        return _missing(req, use, python, where)
    dist, have = next(iter(versions.items())) if versions else next(iter(providers.items()))
    if loaded and not loaded.get("ok"):
        return _fails_to_load(req, use, python, dist, have, str(loaded.get("error") or "unknown error"))
    via = "" if key(dist) == key(req.dist) else f" (as {dist})"
    if req.pin and not same_minor(have, req.pin) and use.role in (_START, "unknown"):
        message = f"{req.dist} {have}{via} is installed; sd-scripts' requirements.txt pins {req.pin}"
        return Verdict("warning", message, message, f"{pip} {_install_spec(req, use)}", installed)
    detail = f"{use.module} from {dist} {have}" + ("" if not req.pin or have == req.pin else f", pinned {req.pin}")
    if use.role != _START and use.why:  # another version of what only some options (or nothing) import
        detail += f" ({use.why} need it)" if use.role == "option" else f" ({use.why})"
    return Verdict("ok", detail, installed=installed)


def _missing(req: Requirement, use: Use, python: str, where: str) -> Verdict:
    fix = f"{python} -m pip install {_install_spec(req, use)}"
    if use.role == "option":
        return Verdict("skipped", f"not installed; only {use.why} need it")
    if use.role == "never":
        return Verdict("skipped", f"not installed; {use.why}")
    if use.role == "unknown":
        message = f"{where} is not installed in {python}"
        return Verdict("warning", "not installed", message, fix)
    return Verdict("error", "not installed", f"{where} is not installed in {python}", fix)


def _fails_to_load(req: Requirement, use: Use, python: str, dist: str, have: str, error: str) -> Verdict:
    message = f"{use.module} ({dist} {have}) is installed, but importing it in {python} fails: {error}"
    fix = f"{python} -m pip install --force-reinstall {dist}=={have}"
    if use.module == "cv2" and "libGL" in error:
        # opencv-python links the desktop's OpenGL; its headless build has the same cv2 without it.
        spec = f"opencv-python-headless=={req.pin}" if req.pin else "opencv-python-headless"
        others = " ".join(d for d in OPENCV if d != "opencv-python-headless")
        fix = f"{python} -m pip uninstall -y {others} && {python} -m pip install --force-reinstall {spec}"
    return Verdict("error" if use.role == _START else "warning", message, message, fix)
