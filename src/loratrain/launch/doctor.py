"""`loratrain doctor`: prove the training interpreter can run this config before the GPU is busy.

One short run of the training interpreter (the config's `python`, else loratrain's own) imports only
what this config will use (torch, accelerate, the optimizer's package, xformers, triton, wandb,
tensorboard), reads the versions of the packages sd-scripts' requirements.txt pins, finds the network
module, and on each visible CUDA GPU runs a tiny matmul in the training precision (plus one 8-bit
optimizer step and one xformers attention call when the config uses them). It prints one JSON line;
`diagnose` turns the answers into `Problem`s whose fix is the exact command for that interpreter.

loratrain's own process never imports any of it: everything heavy happens in the probe.
"""

from __future__ import annotations

import json
import netrc
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from loratrain.errors import ConfigError, Problem, Severity
from loratrain.sdscripts.install import FINDABLE_SOURCE

_RESULT_MARK = "LORATRAIN-RESULT "
_STEP_MARK = "LORATRAIN-STEP "
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
    "cv2": "opencv-python",
    "PIL": "pillow",
    "came_pytorch": "came-pytorch",
}

# requirements.txt pins packages sd-scripts imports only for some options; missing, they matter only then.
OPTIONAL_DISTS = {
    "bitsandbytes": "the 8-bit and paged optimizers",
    "lion-pytorch": "optimizer_type Lion",
    "schedulefree": "the ScheduleFree optimizers",
    "pytorch-optimizer": "pytorch_optimizer.* optimizers",
    "prodigy-plus-schedule-free": "prodigyplus.* optimizers",
    "prodigyopt": "optimizer_type Prodigy",
    "tensorboard": "logging_dir",
}


def optimizer_need(args: Mapping[str, Any]) -> tuple[str, OptimizerNeed]:
    """(the optimizer's name as sd-scripts ends up with it, what it imports). Which class and package each
    optimizer_type reaches is read from the optimizer table (sdscripts/optimizers.py, get_optimizer at 48d368f)."""
    from loratrain.sdscripts import optimizers

    name = optimizers.effective_optimizer_type(
        args.get("optimizer_type"), bool(args.get("use_8bit_adam")), bool(args.get("use_lion_optimizer"))
    )
    try:
        target = optimizers.resolve_optimizer(name)
    except KeyError:  # a name get_optimizer cannot resolve: it tries getattr(torch.optim, name)
        return name, OptimizerNeed("torch.optim", name)
    if target is not None:
        module, _, attr = target.target.rpartition(".")
        dist = None if target.package == "torch" else target.package
        return name, OptimizerNeed(module, attr, dist, bnb=target.package == "bitsandbytes")
    module, _, attr = name.rpartition(".")
    top = module.split(".")[0]
    return name, OptimizerNeed(module, attr, DIST_OF_MODULE.get(top, top), bnb=top == "bitsandbytes")


# ---------------------------------------------------------------- sd-scripts' requirements.txt


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


def _key(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(re.split(r"[.+]", version)[:2])


# ---------------------------------------------------------------- the probe run by the training interpreter

# Prints a STEP line before each import, so a crash (a segfault in a native library) names its culprit.
PROBE = r"""
import importlib, importlib.metadata as md, importlib.util, json, os, sys
request = json.loads(sys.argv[1])
if request.get("path"):
    sys.path.insert(0, request["path"])
out = {"python": sys.version.split()[0], "executable": sys.executable, "versions": {}, "imports": {},
       "located": {}, "gpus": [], "gpu_note": ""}

def step(name):
    sys.stdout.write("LORATRAIN-STEP " + name + "\n"); sys.stdout.flush()

for dist in request["dists"]:
    try:
        out["versions"][dist] = md.version(dist)
    except Exception:
        out["versions"][dist] = None

{findable}
for name in request["locate"]:
    out["located"][name] = findable(name)

modules = {}
for item in request["imports"]:
    name, attr = item["module"], item.get("attr")
    key = name + ("." + attr if attr else "")
    step(key)
    entry = {"ok": False, "error": "", "missing": False, "version": None}
    try:
        module = importlib.import_module(name)
        if attr:
            getattr(module, attr)
        entry["ok"] = True
        modules[name] = module
        top = sys.modules.get(name.split(".")[0])
        entry["version"] = str(getattr(top, "__version__", "") or "") or None
    except ModuleNotFoundError as exc:
        entry["missing"] = bool(exc.name) and (name == exc.name or name.startswith(exc.name + "."))
        entry["error"] = "%s: %s" % (type(exc).__name__, exc)
    except AttributeError as exc:
        entry["error"] = "%s has no %s" % (name, attr)
        entry["missing_attr"] = True
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        entry["error"] = "%s: %s" % (type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    out["imports"][key] = entry

torch = modules.get("torch")
if torch is not None:
    out["torch"] = {"version": torch.__version__, "cuda": getattr(torch.version, "cuda", None)}
    if "xformers" in modules:
        xf = modules["xformers"]
        built = None
        try:
            with open(os.path.join(os.path.dirname(xf.__file__), "cpp_lib.json")) as fp:
                built = json.load(fp).get("version", {}).get("torch")
        except Exception:
            pass
        out["xformers"] = {"built_for_torch": built}
    gpu = request["gpu"]
    step("torch.cuda")
    try:
        available = torch.cuda.is_available()
    except Exception as exc:
        available = False
        out["gpu_note"] = "%s: %s" % (type(exc).__name__, exc)
    if not available:
        out["gpu_note"] = out["gpu_note"] or "no CUDA device"
    else:
        arch = list(torch.cuda.get_arch_list())
        out["torch"]["arch_list"] = arch
        dtype = getattr(torch, gpu["dtype"])
        for i in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(i)
            dev = {"index": i, "name": torch.cuda.get_device_name(i), "capability": "%d.%d" % (major, minor)}
            device = torch.device("cuda", i)
            step("matmul cuda:%d" % i)
            try:
                a = torch.ones((16, 16), device=device, dtype=dtype)
                if gpu.get("fp8"):
                    a = a.to(torch.float8_e4m3fn).to(dtype)
                b = (a @ a).float().sum().item()
                torch.cuda.synchronize(device)
                dev["matmul"] = "ok" if b == 16.0 * 256 else "wrong result %r" % b
            except Exception as exc:
                dev["matmul"] = "%s: %s" % (type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            if gpu.get("bnb_class") and "bitsandbytes.optim" in modules:
                step("8-bit optimizer step cuda:%d" % i)
                try:
                    p = torch.nn.Parameter(torch.ones((64, 64), device=device))
                    opt = getattr(modules["bitsandbytes.optim"], gpu["bnb_class"])([p], lr=1e-3)
                    p.grad = torch.ones_like(p)
                    opt.step()
                    torch.cuda.synchronize(device)
                    dev["bnb_step"] = "ok"
                except Exception as exc:
                    dev["bnb_step"] = "%s: %s" % (type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            if gpu.get("xformers") and "xformers.ops" in modules:
                step("xformers attention cuda:%d" % i)
                try:
                    q = torch.ones((1, 16, 2, 64), device=device, dtype=torch.float16)
                    modules["xformers.ops"].memory_efficient_attention(q, q, q)
                    torch.cuda.synchronize(device)
                    dev["xformers_call"] = "ok"
                except Exception as exc:
                    dev["xformers_call"] = "%s: %s" % (type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            out["gpus"].append(dev)
sys.stdout.write("LORATRAIN-RESULT " + json.dumps(out) + "\n")
""".replace("{findable}", FINDABLE_SOURCE)


@dataclass
class Request:
    """What the probe is asked: distributions to read, modules to import or only locate, GPU work."""

    dists: list[str] = field(default_factory=list)
    imports: list[dict[str, Any]] = field(default_factory=list)
    locate: list[str] = field(default_factory=list)
    path: str | None = None
    gpu: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> str:
        return json.dumps(
            {"dists": self.dists, "imports": self.imports, "locate": self.locate, "path": self.path, "gpu": self.gpu}
        )


def training_dtype(args: Mapping[str, Any]) -> str:
    """The torch dtype training computes in: sd-scripts' own --mixed_precision (and full_bf16/full_fp16)."""
    if args.get("mixed_precision") == "bf16" or args.get("full_bf16"):
        return "bfloat16"
    if args.get("mixed_precision") == "fp16" or args.get("full_fp16"):
        return "float16"
    return "float32"


def uses_tensorboard(args: Mapping[str, Any]) -> bool:
    """accelerate logs to tensorboard when logging_dir is set and log_with is unset, tensorboard or all."""
    return bool(args.get("logging_dir")) and args.get("log_with") in (None, "tensorboard", "all")


def uses_wandb(args: Mapping[str, Any]) -> bool:
    return args.get("log_with") in ("wandb", "all")


def build_request(
    args: Mapping[str, Any], requirements: Sequence[Requirement] | None, sd_scripts: Path | None
) -> Request:
    """Exactly what this config will use, and nothing more (each import costs start-up time)."""
    from loratrain.sdscripts.install import LYCORIS_REQUIREMENT, TRAINING_DISTS

    req = Request(path=str(sd_scripts) if sd_scripts else None)
    req.dists = [r.dist for r in requirements or ()]
    lycoris_dist = LYCORIS_REQUIREMENT.split("==")[0]
    for dist in (*TRAINING_DISTS, lycoris_dist):  # TRAINING_DISTS: what the run record lists
        if dist not in req.dists:
            req.dists.append(dist)
    req.imports = [{"module": "torch"}, {"module": "accelerate"}]
    _, need = optimizer_need(args)
    req.imports.append({"module": need.module, "attr": need.attr})
    if args.get("xformers"):
        req.imports += [{"module": "xformers"}, {"module": "xformers.ops"}]
    if args.get("torch_compile"):
        req.imports.append({"module": "triton"})
    if uses_wandb(args):
        req.imports.append({"module": "wandb"})
    if uses_tensorboard(args):
        req.imports.append({"module": "tensorboard"})
    if args.get("network_module"):
        req.locate.append(str(args["network_module"]))
    for item in req.imports[2:]:  # the versions of what the config imports, for the report
        top = item["module"].split(".")[0]
        used = need.dist if item["module"] == need.module else DIST_OF_MODULE.get(top, top)
        if used and used not in req.dists:
            req.dists.append(used)
    req.gpu = {
        "dtype": training_dtype(args),
        "fp8": bool(args.get("fp8_base") or args.get("fp8_base_unet")),
        "bnb_class": need.attr if need.bnb else None,
        "xformers": bool(args.get("xformers")),
    }
    return req


class ProbeRun:
    """The probe started in the training interpreter; `result()` waits for its answer.

    Started early, it runs while loratrain checks files (preflight starts it before its other checks).
    """

    def __init__(self, python: str, request: Request, env: Mapping[str, str] | None = None):
        self.python = python
        self.error: OSError | None = None
        self.proc: subprocess.Popen | None = None
        try:
            self.proc = subprocess.Popen(
                [python, "-c", PROBE, request.as_json()],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                env=dict(env) if env is not None else None,
            )
        except OSError as exc:
            self.error = exc

    def result(self, timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
        """The probe's JSON answer. ConfigError when the interpreter cannot run it at all."""
        python = self.python
        if self.proc is None:
            exc = self.error
            raise ConfigError(
                [
                    Problem(
                        f"the training interpreter {python} cannot be run: {getattr(exc, 'strerror', None) or exc}",
                        key="python",
                        value=python,
                        fix="set `python` in the config to the interpreter of your sd-scripts environment",
                    )
                ]
            )
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
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
        lines = stdout.splitlines()
        results = [line for line in lines if line.startswith(_RESULT_MARK)]
        if results:
            return json.loads(results[-1][len(_RESULT_MARK) :])
        steps = [line[len(_STEP_MARK) :] for line in lines if line.startswith(_STEP_MARK)]
        code = self.proc.returncode
        tail = " ".join(stderr.strip().splitlines()[-2:])[-300:]
        how = f"died with exit status {code}" if code >= 0 else f"was killed by signal {-code}"
        if steps:
            raise ConfigError(
                [
                    Problem(
                        f"the training interpreter {python} {how} while loading {steps[-1]}"
                        + (f": {tail}" if tail else ""),
                        key="python",
                        value=python,
                        fix=f"reinstall it: {python} -m pip install --force-reinstall {_dist_for(steps[-1])}",
                    )
                ]
            )
        raise ConfigError(
            [
                Problem(
                    f"the training interpreter {python} failed to start: {tail}",
                    key="python",
                    value=python,
                    fix="set `python` in the config to a working Python 3 interpreter",
                )
            ]
        )


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
        }


@dataclass
class DoctorInput:
    args: Mapping[str, Any]
    python: str
    sd_scripts: Path | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    config_file: str = ""
    gpus_listed: int | None = None  # GPUs nvidia-smi lists (None: no nvidia-smi); a CPU-only torch cannot use them


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
    return requirements, ProbeRun(inp.python, build_request(inp.args, requirements, inp.sd_scripts), inp.env)


def diagnose(inp: DoctorInput, started: tuple[list[Requirement] | None, ProbeRun] | None = None) -> Report:
    """Run the probe for this config (or finish the one `start` began) and judge its answers: every check,
    and the problems with their fixes."""
    from loratrain.sdscripts.install import LYCORIS_REQUIREMENT

    requirements, probe = started or start(inp)
    args = inp.args
    data = probe.result()
    py = data.get("executable") or inp.python
    report = Report(python=py, probe=data)
    pins = {_key(r.dist): r for r in requirements or ()}
    fixed: set[str] = set()  # dists whose fix is already given

    def problem(message: str, key: str, fix: str = "", severity: Severity = "error", value: Any = None) -> Problem:
        return Problem(message=message, key=key, file=inp.config_file, fix=fix, value=value, severity=severity)

    def spec(dist: str) -> str:
        if _key(dist) == _key(LYCORIS_REQUIREMENT.split("==")[0]):
            return LYCORIS_REQUIREMENT
        pinned = pins.get(_key(dist))
        return pinned.spec if pinned else dist

    def install(dist: str, again: bool = False) -> str:
        return f"{py} -m pip install {'--force-reinstall ' if again else ''}{spec(dist)}"

    imports = data.get("imports", {})

    def imported(key: str, label: str, dist: str, config_key: str, why: str, fix: str = "") -> bool:
        entry = imports.get(key) or {}
        if entry.get("ok"):
            version = data["versions"].get(dist) or entry.get("version") or "?"
            report.add(label, "ok", f"{key} imports ({dist} {version})")
            return True
        if key != "torch" and not (imports.get("torch") or {}).get("ok") and not entry.get("missing"):
            report.add(label, "skipped", f"skipped: {key} fails to import, but torch itself does not import")
            return False  # torch's own problem comes first; this one is most likely the same
        fixed.add(_key(dist))
        if entry.get("missing"):
            p = problem(f"{why}, but {dist} is not installed in {py}", config_key, fix or install(dist))
        elif entry.get("missing_attr"):
            p = problem(
                f"{why}, but {entry['error']} (installed {dist} {data['versions'].get(dist) or '?'})",
                config_key,
                f"{py} -m pip install --upgrade {dist}",
            )
        else:
            p = problem(
                f"{why}, but importing {key} in {py} fails: {entry.get('error') or 'unknown error'}",
                config_key,
                fix or install(dist, again=True),
            )
        report.add(label, "error", p.message, p)
        return False

    # torch, accelerate: the launch itself
    torch_ok = imported("torch", "torch", "torch", "python", "training needs torch")
    torch_info = data.get("torch") or {}
    if torch_ok:
        report.checks[-1] = Check(
            "torch",
            "ok",
            f"torch {torch_info.get('version')} (CUDA build: {torch_info.get('cuda') or 'none, CPU only'})",
        )
        if not torch_info.get("cuda") and inp.gpus_listed:
            p = problem(
                f"torch {torch_info.get('version')} in {py} is a CPU-only build, but nvidia-smi lists {inp.gpus_listed} GPU(s); "
                "training would run on the CPU",
                "python",
                f"{py} -m pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/cu128",
                "warning",
            )
            report.add("torch CUDA build", "warning", p.message, p)
    imported("accelerate", "accelerate", "accelerate", "python", "the launch runs accelerate")

    # the network module
    network = args.get("network_module")
    if network:
        found = data.get("located", {}).get(str(network), False)
        if str(network).startswith("lycoris"):
            dist = LYCORIS_REQUIREMENT.split("==")[0]
            version = data["versions"].get(dist)
            wanted = LYCORIS_REQUIREMENT.split("==")[1]
            fixed.add(_key(dist))
            if not version:
                p = problem(
                    f"network_module {network} cannot be imported by {py}: LyCORIS ({dist}) is not installed",
                    "network_module",
                    install(dist),
                    value=network,
                )
                report.add("network module", "error", p.message, p)
            elif not found:  # LyCORIS is there, the module name is not (a typo such as lycoris.kohyaa)
                p = problem(
                    f"network_module {network} cannot be imported by {py}: LyCORIS {version} has no such module",
                    "network_module",
                    'sd-scripts loads LyCORIS as network_module = "lycoris.kohya"',
                    value=network,
                )
                report.add("network module", "error", p.message, p)
            elif version != wanted:
                p = problem(
                    f"{dist} {version} is installed; loratrain's LyCORIS facts were read from {wanted}",
                    "network_module",
                    install(dist),
                    "warning",
                    network,
                )
                report.add("network module", "warning", p.message, p)
            else:
                report.add("network module", "ok", f"{network} found ({dist} {version})")
        elif not found:
            fix = "check the module name; sd-scripts' own modules are networks.lora, networks.dylora, networks.oft"
            if str(network).startswith("networks.") and not inp.sd_scripts:
                # networks.* is sd-scripts' own folder, which is only importable once loratrain knows where it is
                fix = "set sd_scripts (or --sd-scripts) to the sd-scripts folder, where networks/ lives"
            p = problem(
                f"network_module {network} cannot be imported by {py}"
                + (f" (sd-scripts at {inp.sd_scripts})" if inp.sd_scripts else ""),
                "network_module",
                fix,
                value=network,
            )
            report.add("network module", "error", p.message, p)
        else:
            report.add("network module", "ok", f"{network} found")

    # the optimizer
    name, need = optimizer_need(args)
    if need.module != "torch.optim":
        imported(
            f"{need.module}.{need.attr}",
            "optimizer",
            need.dist or need.module.split(".")[0],
            "optimizer_type",
            f"optimizer_type {name} needs {need.module}.{need.attr}",
        )
    elif torch_ok:
        entry = imports.get(f"torch.optim.{need.attr}") or {}
        if entry and not entry.get("ok"):
            p = problem(
                f"optimizer_type {name} is not a torch.optim class in torch {torch_info.get('version')}",
                "optimizer_type",
                "use one of sd-scripts' optimizer names (`loratrain explain optimizer_type`) or a dotted module.Class path",
                value=name,
            )
            report.add("optimizer", "error", p.message, p)
        else:
            report.add("optimizer", "ok", f"{name}: torch.optim.{need.attr}")

    # attention, compile, loggers
    if args.get("xformers"):
        have = torch_info.get("version") or ""
        # pip picks the xformers built for the torch it is told to keep.
        xformers_fix = (
            f'{py} -m pip install --upgrade xformers "torch=={have.split("+")[0]}"' if have else install("xformers")
        )
        if imported("xformers", "xformers", "xformers", "xformers", "xformers = true", xformers_fix) and imported(
            "xformers.ops", "xformers", "xformers", "xformers", "xformers = true", xformers_fix
        ):
            built = (data.get("xformers") or {}).get("built_for_torch")
            if built and have and built.split("+")[0] != have.split("+")[0]:
                p = problem(
                    f"xformers {data['versions'].get('xformers') or '?'} was built for torch {built}, but {py} has torch {have}",
                    "xformers",
                    xformers_fix,
                )
                report.add("xformers build", "error", p.message, p)
    if args.get("torch_compile"):
        imported("triton", "triton", "triton", "torch_compile", "torch_compile needs triton")
    if uses_wandb(args):
        if imported("wandb", "wandb", "wandb", "log_with", f'log_with = "{args.get("log_with")}" needs wandb'):
            if not wandb_key_found(args, inp.env):
                p = problem(
                    "log_with wandb needs an API key: none in the config (wandb_api_key), WANDB_API_KEY or ~/.netrc",
                    "wandb_api_key",
                    f"set wandb_api_key in the config, export WANDB_API_KEY, or run `{py} -m wandb login`",
                )
                report.add("wandb key", "error", p.message, p)
            else:
                report.add("wandb key", "ok", "found")
    if uses_tensorboard(args):
        imported("tensorboard", "tensorboard", "tensorboard", "logging_dir", "logging_dir logs through tensorboard")

    # sd-scripts' pins
    _requirements(report, data, requirements, inp, fixed, problem, install)

    # the GPUs
    _gpus(report, data, args, need, problem, py)
    return report


def _requirements(report, data, requirements, inp, fixed, problem, install) -> None:
    if requirements is None:
        where = f"{inp.sd_scripts}/requirements.txt" if inp.sd_scripts else "sd-scripts folder unknown"
        report.add("requirements", "skipped", f"skipped: no {where}" if inp.sd_scripts else f"skipped: {where}")
        return
    missing, drift = [], []
    for req in requirements:
        if _key(req.dist) in fixed:
            continue
        have = data["versions"].get(req.dist)
        if have is None:
            optional = OPTIONAL_DISTS.get(_key(req.dist))
            if optional:
                report.add(f"requirement {req.dist}", "skipped", f"not installed; only {optional} need it")
                continue
            missing.append(req)
            p = problem(
                f"{req.dist} (in sd-scripts' requirements.txt) is not installed in {report.python}",
                "sd_scripts",
                install(req.dist),
            )
            report.add(f"requirement {req.dist}", "error", p.message, p)
        elif req.pin and _major_minor(have) != _major_minor(req.pin):
            drift.append(req)
            p = problem(
                f"{req.dist} {have} is installed; sd-scripts' requirements.txt pins {req.pin}",
                "sd_scripts",
                install(req.dist),
                "warning",
            )
            report.add(f"requirement {req.dist}", "warning", p.message, p)
    ok = len(requirements) - len(missing) - len(drift)
    report.add(
        "requirements",
        "ok" if not missing else "error",
        f"{ok} of {len(requirements)} packages of {inp.sd_scripts}/requirements.txt installed at the pinned major.minor",
    )


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


def _gpus(report, data, args, need, problem, py) -> None:
    gpus = data.get("gpus") or []
    if not gpus:
        if data.get("torch"):
            note = data.get("gpu_note") or "no CUDA device"
            report.add("GPU", "skipped", SKIPPED_NO_CUDA if note == "no CUDA device" else f"skipped: {note}")
        return
    torch_info = data.get("torch") or {}
    arch = torch_info.get("arch_list") or []
    dtype = training_dtype(args)
    for g in gpus:
        label = f"GPU {g['index']}"
        where = f"GPU {g['index']} ({g['name']}, compute capability {g['capability']})"
        if arch and not _capability_supported(g["capability"], arch):
            p = problem(
                f"torch {torch_info.get('version')} has no code for {where}: it was built for {' '.join(arch)}",
                "python",
                f"{py} -m pip install --upgrade torch --index-url https://download.pytorch.org/whl/cu128",
            )
            report.add(label, "error", p.message, p)
            continue
        if g.get("matmul") != "ok":
            p = problem(
                f"a {dtype} matmul on {where} fails: {g.get('matmul')}",
                "mixed_precision",
                "use a precision this GPU supports (fp16 before compute capability 8.0), or check the driver with nvidia-smi",
            )
            report.add(label, "error", p.message, p)
            continue
        report.add(
            label,
            "ok",
            f"{where}: {dtype} matmul"
            + (" with fp8 weights" if args.get("fp8_base") or args.get("fp8_base_unet") else ""),
        )
        if "bnb_step" in g:
            if g["bnb_step"] == "ok":
                report.add(f"{label} 8-bit optimizer", "ok", f"one {need.attr} step")
            else:
                p = problem(
                    f"one {need.attr} step on {where} fails: {g['bnb_step']}",
                    "optimizer_type",
                    f"{py} -m pip install --upgrade --force-reinstall bitsandbytes",
                )
                report.add(f"{label} 8-bit optimizer", "error", p.message, p)
        if "xformers_call" in g:
            if g["xformers_call"] == "ok":
                report.add(f"{label} xformers", "ok", "memory_efficient_attention runs")
            else:
                have = (torch_info.get("version") or "").split("+")[0]
                p = problem(
                    f"xformers' memory_efficient_attention fails on {where}: {g['xformers_call']}",
                    "xformers",
                    f'{py} -m pip install --upgrade xformers "torch=={have}"',
                )
                report.add(f"{label} xformers", "error", p.message, p)
