"""`loratrain doctor`: prove the training interpreter can run this config before the GPU is busy.

One short run of the training interpreter (the config's `python`, else loratrain's own) imports only
what this config will use (torch, accelerate, the optimizer's package, xformers, triton, wandb,
tensorboard), reads the versions of the packages sd-scripts' requirements.txt pins, finds the network
module, and on each visible CUDA GPU runs a tiny matmul in the training precision (plus one 8-bit
optimizer step and one xformers attention call when the config uses them). It prints one JSON line;
`diagnose` turns the answers into `Problem`s whose fix is the exact command for that interpreter.

What the config uses (the optimizer's class and package, the training precision, fp8, xformers, torch.compile,
the loggers) is read from the effective view (loratrain/effective.py), never from the raw arguments.

loratrain's own process never imports any of it: everything heavy happens in the probe.
"""

from __future__ import annotations

import json
import netrc
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from loratrain.effective import Effective
from loratrain.errors import ConfigError, Problem, Severity
from loratrain.launch.requirements import Requirement, judge, key, probe_items, read_requirements
from loratrain.sdscripts import probes

PROBE_TIMEOUT_S = 300.0
SKIPPED_NO_CUDA = "skipped: no CUDA device"


# ---------------------------------------------------------------- which package each option needs


@dataclass(frozen=True)
class OptimizerNeed:
    """What sd-scripts imports for one optimizer_type: `module.attr`, installed from `dist`."""

    module: str
    attr: str
    dist: str | None = None  # pip name; None: part of torch
    bnb: bool = False  # a bitsandbytes optimizer: one real step on the GPU proves its CUDA library loads


# Import name -> pip name, where they differ or a dotted optimizer path may name them.
DIST_OF_MODULE = {
    "lion_pytorch": "lion-pytorch",
    "pytorch_optimizer": "pytorch-optimizer",
    "prodigyplus": "prodigy-plus-schedule-free",
    "lycoris": "lycoris_lora",
    "cv2": "opencv-python-headless",  # the build that loads on servers too (launch/requirements.py)
    "PIL": "pillow",
    "came_pytorch": "came-pytorch",
}


# The effective view's precision -> the torch dtype the probe's matmul runs in.
TORCH_DTYPE = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


def view_of(config: Effective | Mapping[str, Any]) -> Effective:
    """The effective view; sd-scripts arguments (dest -> value) are turned into one."""
    return config if isinstance(config, Effective) else Effective.from_args(config)


def optimizer_need(config: Effective | Mapping[str, Any]) -> tuple[str, OptimizerNeed]:
    """(the optimizer's name as sd-scripts ends up with it, what it imports), from the view's optimizer class and
    package (the optimizer table, get_optimizer at 48d368f)."""
    view = view_of(config)
    name, target, package = view.optimizer_type, view.optimizer_class, view.optimizer_package
    if target is None:  # a name get_optimizer cannot resolve: it tries getattr(torch.optim, name)
        return name, OptimizerNeed("torch.optim", name)
    module, _, attr = target.rpartition(".")
    top = module.split(".")[0]
    if package is None:  # a dotted path outside the table: pip's name for its top-level module
        return name, OptimizerNeed(module, attr, DIST_OF_MODULE.get(top, top), bnb=top == "bitsandbytes")
    return name, OptimizerNeed(module, attr, None if package == "torch" else package, bnb=package == "bitsandbytes")


@dataclass
class Request:
    """What the probe is asked: distributions to read, modules to import or only locate, GPU work."""

    dists: list[str] = field(default_factory=list)
    imports: list[dict[str, Any]] = field(default_factory=list)
    locate: list[str] = field(default_factory=list)
    path: str | None = None
    gpu: dict[str, Any] = field(default_factory=dict)
    requirements: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps(
            {
                "dists": self.dists,
                "imports": self.imports,
                "locate": self.locate,
                "path": self.path,
                "gpu": self.gpu,
                "requirements": self.requirements,
            }
        )


def training_dtype(view: Effective) -> str:
    """The torch dtype training computes in: the view's precision (sd-scripts' own --mixed_precision)."""
    return TORCH_DTYPE.get(view.precision.activations, "float32")


def build_request(
    config: Effective | Mapping[str, Any], requirements: Sequence[Requirement] | None, sd_scripts: Path | None
) -> Request:
    """Exactly what this config will use, and nothing more (each import costs start-up time)."""
    from loratrain.sdscripts.install import LYCORIS_REQUIREMENT, TRAINING_DISTS

    view = view_of(config)
    args = view.args
    req = Request(path=str(sd_scripts) if sd_scripts else None)
    req.dists = [r.dist for r in requirements or ()]
    req.requirements = probe_items(list(requirements or []))
    lycoris_dist = LYCORIS_REQUIREMENT.split("==")[0]
    for dist in (*TRAINING_DISTS, lycoris_dist):  # TRAINING_DISTS: what the run record lists
        if dist not in req.dists:
            req.dists.append(dist)
    req.imports = [{"module": "torch"}, {"module": "accelerate"}]
    _, need = optimizer_need(view)
    req.imports.append({"module": need.module, "attr": need.attr})
    if view.xformers_loaded:
        req.imports += [{"module": "xformers"}, {"module": "xformers.ops"}]
    if view.dynamo_backend != "NO":
        req.imports.append({"module": "triton"})
    if "wandb" in view.trackers:
        req.imports.append({"module": "wandb"})
    if "tensorboard" in view.trackers:
        req.imports.append({"module": "tensorboard"})
    if args.get("network_module"):
        req.locate.append(str(args["network_module"]))
    for item in req.imports[2:]:  # the versions of what the config imports, for the report
        top = item["module"].split(".")[0]
        used = need.dist if item["module"] == need.module else DIST_OF_MODULE.get(top, top)
        if used and used not in req.dists:
            req.dists.append(used)
    req.gpu = {
        "dtype": training_dtype(view),
        "fp8": view.precision.fp8,
        "bnb_class": need.attr if need.bnb else None,
        "xformers": view.xformers_loaded,
    }
    return req


class ProbeRun:
    """The probe (sdscripts/probes/doctor_probe.py) started in the training interpreter; `result()` waits for it.

    Started early, it runs while loratrain checks files (preflight starts it before its other checks).
    """

    def __init__(self, python: str, request: Request, env: Mapping[str, str] | None = None):
        self.python = python
        self.request = request
        self.started = probes.Started(python, "doctor_probe", [request.as_json()], env)

    def result(self, timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
        """The probe's JSON answer. ConfigError when the interpreter cannot run it at all."""
        python = self.python
        try:
            ended = self.started.wait(timeout)
        except OSError as exc:
            raise ConfigError([probes.cannot_run(python, exc)]) from None
        except probes.TimedOut:
            raise ConfigError(
                [
                    Problem(
                        f"the training interpreter {python} did not finish its environment check in {timeout:.0f} s",
                        key="python",
                        value=python,
                        fix="run `loratrain doctor` to see which import hangs",
                    )
                ]
            ) from None
        if isinstance(ended.result, dict):
            return ended.result
        if ended.steps:
            tail = ended.tail()
            raise ConfigError(
                [
                    Problem(
                        f"the training interpreter {python} {ended.how()} while loading {ended.steps[-1]}"
                        + (f": {tail}" if tail else ""),
                        key="python",
                        value=python,
                        fix=f"reinstall it: {python} -m pip install --force-reinstall {_dist_for(ended.steps[-1])}",
                    )
                ]
            )
        raise ConfigError([probes.failed_to_start(python, ended)])


def run_probe(
    python: str, request: Request, env: Mapping[str, str] | None = None, timeout: float = PROBE_TIMEOUT_S
) -> dict[str, Any]:
    """Run the probe in `python` and wait for its JSON answer."""
    return ProbeRun(python, request, env).result(timeout)


def _dist_for(step: str) -> str:
    top = step.split()[0].split(".")[0]
    return DIST_OF_MODULE.get(top, top)


# ---------------------------------------------------------------- answers -> problems


@dataclass(frozen=True)
class Check:
    """One line of `loratrain doctor`'s report."""

    name: str
    status: str  # ok / warning / error / skipped
    detail: str


@dataclass
class Report:
    python: str  # the interpreter as the fix commands name it
    checks: list[Check] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    probe: dict[str, Any] = field(default_factory=dict)
    effective: dict[str, Any] | None = None  # the view's facts this report judged by
    request: Request | None = None  # what the probe was asked to import and run

    def add(self, name: str, status: str, detail: str, problem: Problem | None = None) -> None:
        self.checks.append(Check(name, status, detail))
        if problem is not None:
            self.problems.append(problem)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not any(p.severity != "warning" for p in self.problems),
            "python": self.python,
            "checks": [c.__dict__ for c in self.checks],
            "errors": [p.render() for p in self.problems if p.severity != "warning"],
            "warnings": [p.render() for p in self.problems if p.severity == "warning"],
            "effective": self.effective,
            "request": {"imports": self.request.imports, "gpu": self.request.gpu} if self.request else None,
        }


@dataclass
class DoctorInput:
    args: Mapping[str, Any]  # sd-scripts dest -> value; the view is built from them unless given
    python: str
    sd_scripts: Path | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    config_file: str = ""
    gpus_listed: int | None = None  # GPUs nvidia-smi lists (None: no nvidia-smi); a CPU-only torch cannot use them
    view: Effective | None = None  # the config's effective view (the caller's, built once per verb)

    def effective(self) -> Effective:
        if self.view is None:
            self.view = Effective.from_args(self.args)
        return self.view


def wandb_key_found(args: Mapping[str, Any], env: Mapping[str, str]) -> bool:
    """A wandb API key from the config's secret, WANDB_API_KEY, or `wandb login`'s netrc entry."""
    if args.get("wandb_api_key") or env.get("WANDB_API_KEY"):
        return True
    path = env.get("NETRC") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".netrc")
    try:
        return netrc.netrc(path).authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def start(inp: DoctorInput) -> tuple[list[Requirement] | None, ProbeRun]:
    """Read sd-scripts' pins and start the probe for this config; `diagnose` takes both to finish."""
    requirements = read_requirements(inp.sd_scripts)
    return requirements, ProbeRun(inp.python, build_request(inp.effective(), requirements, inp.sd_scripts), inp.env)


def diagnose(inp: DoctorInput, started: tuple[list[Requirement] | None, ProbeRun] | None = None) -> Report:
    """Run the probe for this config (or finish the one `start` began) and judge its answers: every check,
    and the problems with their fixes."""
    requirements, probe = started or start(inp)
    report = Judge(inp, requirements, probe.result()).run()
    report.request = getattr(probe, "request", None)
    return report


class Judge:
    """The probe's answer -> `Report`: one method per check, in the order the report lists them."""

    def __init__(self, inp: DoctorInput, requirements: list[Requirement] | None, data: dict[str, Any]):
        from loratrain.sdscripts.install import LYCORIS_REQUIREMENT

        self.inp = inp
        self.view = inp.effective()
        self.args = self.view.args
        self.requirements = requirements
        self.data = data
        self.py = data.get("executable") or inp.python
        self.report = Report(python=self.py, probe=data, effective=self.view.facts())
        self.pins = {key(r.dist): r for r in requirements or ()}
        self.fixed: set[str] = set()  # dists whose fix is already given
        self.imports: dict[str, Any] = data.get("imports", {})
        self.versions: dict[str, Any] = data.get("versions") or {}
        self.torch_info: dict[str, Any] = data.get("torch") or {}
        self.lycoris = LYCORIS_REQUIREMENT
        self.optimizer_name, self.need = optimizer_need(self.view)

    def run(self) -> Report:
        torch_ok = self.check_torch()
        self.imported("accelerate", "accelerate", "accelerate", "python", "the launch runs accelerate")
        self.check_network()
        self.check_optimizer(torch_ok)
        self.check_xformers()
        if self.view.dynamo_backend != "NO":
            self.imported("triton", "triton", "triton", "torch_compile", "torch_compile needs triton")
        self.check_wandb()
        if "tensorboard" in self.view.trackers:
            self.imported(
                "tensorboard", "tensorboard", "tensorboard", "logging_dir", "logging_dir logs through tensorboard"
            )
        self.check_requirements()
        self.check_gpus()
        return self.report

    # -- helpers

    def problem(
        self, message: str, key: str, fix: str = "", severity: Severity = "error", value: Any = None
    ) -> Problem:
        return Problem(message=message, key=key, file=self.inp.config_file, fix=fix, value=value, severity=severity)

    def add(self, label: str, status: str, p: Problem | str) -> None:
        """A check line; a Problem also goes into the report's problems."""
        if isinstance(p, Problem):
            self.report.add(label, status, p.message, p)
        else:
            self.report.add(label, status, p)

    def spec(self, dist: str) -> str:
        if key(dist) == key(self.lycoris.split("==")[0]):
            return self.lycoris
        pinned = self.pins.get(key(dist))
        return pinned.spec if pinned else dist

    def install(self, dist: str, again: bool = False) -> str:
        return f"{self.py} -m pip install {'--force-reinstall ' if again else ''}{self.spec(dist)}"

    def imported(self, key_: str, label: str, dist: str, config_key: str, why: str, fix: str = "") -> bool:
        """The outcome of one import the config needs: an ok line, or the problem with its fix."""
        entry = self.imports.get(key_) or {}
        if entry.get("ok"):
            version = self.versions.get(dist) or entry.get("version") or "?"
            self.add(label, "ok", f"{key_} imports ({dist} {version})")
            return True
        if key_ != "torch" and not (self.imports.get("torch") or {}).get("ok") and not entry.get("missing"):
            self.add(label, "skipped", f"skipped: {key_} fails to import, but torch itself does not import")
            return False  # torch's own problem comes first; this one is most likely the same
        self.fixed.add(key(dist))
        if entry.get("missing"):
            p = self.problem(f"{why}, but {dist} is not installed in {self.py}", config_key, fix or self.install(dist))
        elif entry.get("missing_attr"):
            p = self.problem(
                f"{why}, but {entry['error']} (installed {dist} {self.versions.get(dist) or '?'})",
                config_key,
                f"{self.py} -m pip install --upgrade {dist}",
            )
        else:
            p = self.problem(
                f"{why}, but importing {key_} in {self.py} fails: {entry.get('error') or 'unknown error'}",
                config_key,
                fix or self.install(dist, again=True),
            )
        self.add(label, "error", p)
        return False

    # -- the checks

    def check_torch(self) -> bool:
        if not self.imported("torch", "torch", "torch", "python", "training needs torch"):
            return False
        info = self.torch_info
        self.report.checks[-1] = Check(
            "torch", "ok", f"torch {info.get('version')} (CUDA build: {info.get('cuda') or 'none, CPU only'})"
        )
        if not info.get("cuda") and self.inp.gpus_listed:
            p = self.problem(
                f"torch {info.get('version')} in {self.py} is a CPU-only build, but nvidia-smi lists "
                f"{self.inp.gpus_listed} GPU(s); training would run on the CPU",
                "python",
                f"{self.py} -m pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/cu128",
                "warning",
            )
            self.add("torch CUDA build", "warning", p)
        return True

    def check_network(self) -> None:
        network = self.args.get("network_module")
        if not network:
            return
        found = self.data.get("located", {}).get(str(network), False)
        if str(network).startswith("lycoris"):
            self.check_lycoris(str(network), found)
        elif not found:
            fix = "check the module name; sd-scripts' own modules are networks.lora, networks.dylora, networks.oft"
            if str(network).startswith("networks.") and not self.inp.sd_scripts:
                # networks.* is sd-scripts' own folder, which is only importable once loratrain knows where it is
                fix = "set sd_scripts (or --sd-scripts) to the sd-scripts folder, where networks/ lives"
            where = f" (sd-scripts at {self.inp.sd_scripts})" if self.inp.sd_scripts else ""
            p = self.problem(
                f"network_module {network} cannot be imported by {self.py}{where}", "network_module", fix, value=network
            )
            self.add("network module", "error", p)
        else:
            self.add("network module", "ok", f"{network} found")

    def check_lycoris(self, network: str, found: bool) -> None:
        dist, wanted = self.lycoris.split("==")
        version = self.versions.get(dist)
        self.fixed.add(key(dist))
        cannot = f"network_module {network} cannot be imported by {self.py}"
        if not version:
            p = self.problem(
                f"{cannot}: LyCORIS ({dist}) is not installed", "network_module", self.install(dist), value=network
            )
            self.add("network module", "error", p)
        elif not found:  # LyCORIS is there, the module name is not (a typo such as lycoris.kohyaa)
            fix = 'sd-scripts loads LyCORIS as network_module = "lycoris.kohya"'
            p = self.problem(f"{cannot}: LyCORIS {version} has no such module", "network_module", fix, value=network)
            self.add("network module", "error", p)
        elif version != wanted:
            p = self.problem(
                f"{dist} {version} is installed; loratrain's LyCORIS facts were read from {wanted}",
                "network_module",
                self.install(dist),
                "warning",
                network,
            )
            self.add("network module", "warning", p)
        else:
            self.add("network module", "ok", f"{network} found ({dist} {version})")

    def check_optimizer(self, torch_ok: bool) -> None:
        name, need = self.optimizer_name, self.need
        if need.module != "torch.optim":
            self.imported(
                f"{need.module}.{need.attr}",
                "optimizer",
                need.dist or need.module.split(".")[0],
                "optimizer_type",
                f"optimizer_type {name} needs {need.module}.{need.attr}",
            )
            return
        if not torch_ok:
            return
        entry = self.imports.get(f"torch.optim.{need.attr}") or {}
        if entry and not entry.get("ok"):
            p = self.problem(
                f"optimizer_type {name} is not a torch.optim class in torch {self.torch_info.get('version')}",
                "optimizer_type",
                "use one of sd-scripts' optimizer names (`loratrain explain optimizer_type`) or a dotted module.Class path",
                value=name,
            )
            self.add("optimizer", "error", p)
        else:
            self.add("optimizer", "ok", f"{name}: torch.optim.{need.attr}")

    def check_xformers(self) -> None:
        if not self.view.xformers_loaded:
            return
        have = self.torch_info.get("version") or ""
        # pip picks the xformers built for the torch it is told to keep.
        fix = (
            f'{self.py} -m pip install --upgrade xformers "torch=={have.split("+")[0]}"'
            if have
            else self.install("xformers")
        )
        why = "xformers = true"
        if not (
            self.imported("xformers", "xformers", "xformers", "xformers", why, fix)
            and self.imported("xformers.ops", "xformers", "xformers", "xformers", why, fix)
        ):
            return
        built = (self.data.get("xformers") or {}).get("built_for_torch")
        if built and have and built.split("+")[0] != have.split("+")[0]:
            p = self.problem(
                f"xformers {self.versions.get('xformers') or '?'} was built for torch {built}, but {self.py} has torch {have}",
                "xformers",
                fix,
            )
            self.add("xformers build", "error", p)

    def check_wandb(self) -> None:
        if "wandb" not in self.view.trackers:
            return
        why = f'log_with = "{self.args.get("log_with")}" needs wandb'
        if not self.imported("wandb", "wandb", "wandb", "log_with", why):
            return
        if wandb_key_found(self.args, self.inp.env):
            self.add("wandb key", "ok", "found")
            return
        p = self.problem(
            "log_with wandb needs an API key: none in the config (wandb_api_key), WANDB_API_KEY or ~/.netrc",
            "wandb_api_key",
            f"set wandb_api_key in the config, export WANDB_API_KEY, or run `{self.py} -m wandb login`",
        )
        self.add("wandb key", "error", p)

    def check_requirements(self) -> None:
        """Each pin of sd-scripts' requirements.txt, judged by its module (launch/requirements.py)."""
        inp, requirements = self.inp, self.requirements
        if requirements is None:
            where = f"{inp.sd_scripts}/requirements.txt" if inp.sd_scripts else "sd-scripts folder unknown"
            self.add("requirements", "skipped", f"skipped: no {where}" if inp.sd_scripts else f"skipped: {where}")
            return
        answers = self.data.get("requirements") or {}
        counts = {"ok": 0, "warning": 0, "error": 0, "skipped": 0}
        for req in requirements:
            if key(req.dist) in self.fixed:
                continue
            verdict = judge(req, answers.get(req.dist) or self._old_answer(req), self.py)
            counts[verdict.status] = counts.get(verdict.status, 0) + 1
            label = f"requirement {req.dist}"
            if verdict.message:
                severity: Severity = "error" if verdict.status == "error" else "warning"
                self.add(label, verdict.status, self.problem(verdict.message, "sd_scripts", verdict.fix, severity))
            elif verdict.status != "ok":
                self.add(label, verdict.status, verdict.detail)
        self.add(
            "requirements",
            "error" if counts["error"] else "ok",
            f"{counts['ok']} of {len(requirements)} packages of {inp.sd_scripts}/requirements.txt importable at the "
            f"pinned major.minor; {counts['warning']} to look at, {counts['error']} missing or broken",
        )

    def _old_answer(self, req: Requirement) -> dict[str, Any]:
        """A probe answer without a `requirements` part (a recorded one): the metadata versions only."""
        have = self.versions.get(req.dist)
        return {"module_found": have is not None, "versions": {req.dist: have}}

    def check_gpus(self) -> None:
        gpus = self.data.get("gpus") or []
        if not gpus:
            if self.data.get("torch"):
                note = self.data.get("gpu_note") or "no CUDA device"
                self.add("GPU", "skipped", SKIPPED_NO_CUDA if note == "no CUDA device" else f"skipped: {note}")
            return
        for g in gpus:
            self.check_gpu(g)

    def check_gpu(self, g: dict[str, Any]) -> None:
        arch = self.torch_info.get("arch_list") or []
        dtype = training_dtype(self.view)
        label = f"GPU {g['index']}"
        where = f"GPU {g['index']} ({g['name']}, compute capability {g['capability']})"
        if arch and not _capability_supported(g["capability"], arch):
            p = self.problem(
                f"torch {self.torch_info.get('version')} has no code for {where}: it was built for {' '.join(arch)}",
                "python",
                f"{self.py} -m pip install --upgrade torch --index-url https://download.pytorch.org/whl/cu128",
            )
            self.add(label, "error", p)
            return
        if g.get("matmul") != "ok":
            p = self.problem(
                f"a {dtype} matmul on {where} fails: {g.get('matmul')}",
                "mixed_precision",
                "use a precision this GPU supports (fp16 before compute capability 8.0), or check the driver with nvidia-smi",
            )
            self.add(label, "error", p)
            return
        fp8 = " with fp8 weights" if self.view.precision.fp8 else ""
        self.add(label, "ok", f"{where}: {dtype} matmul{fp8}")
        if "bnb_step" in g:
            self.gpu_call(
                f"{label} 8-bit optimizer",
                g["bnb_step"],
                f"one {self.need.attr} step",
                f"one {self.need.attr} step on {where} fails",
                "optimizer_type",
                f"{self.py} -m pip install --upgrade --force-reinstall bitsandbytes",
            )
        if "xformers_call" in g:
            have = (self.torch_info.get("version") or "").split("+")[0]
            self.gpu_call(
                f"{label} xformers",
                g["xformers_call"],
                "memory_efficient_attention runs",
                f"xformers' memory_efficient_attention fails on {where}",
                "xformers",
                f'{self.py} -m pip install --upgrade xformers "torch=={have}"',
            )

    def gpu_call(self, label: str, outcome: str, ok: str, failed: str, config_key: str, fix: str) -> None:
        if outcome == "ok":
            self.add(label, "ok", ok)
        else:
            self.add(label, "error", self.problem(f"{failed}: {outcome}", config_key, fix))


def _capability_supported(cap: str, arch_list: Sequence[str]) -> bool:
    """Whether torch carries code for this GPU: a cubin of the same major and no newer minor, or older PTX."""
    major, minor = (int(x) for x in cap.split("."))
    for arch in arch_list:
        kind, _, number = arch.partition("_")
        digits = re.match(r"\d+", number)
        if not digits:
            continue
        value = int(digits.group())
        a_major, a_minor = divmod(value, 10)
        if kind == "sm" and a_major == major and a_minor <= minor:
            return True
        if kind == "compute" and (a_major, a_minor) <= (major, minor):
            return True
    return False
