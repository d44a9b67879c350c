"""Run by path in the training interpreter: what `loratrain doctor` asks of it (launch/doctor.py builds the request).

Request: {"dists": [...], "imports": [{"module", "attr"?}], "locate": [...], "path": sd-scripts folder or null,
"requirements": [{"dist", "module", "also": [...], "load": bool}], "gpu": {"dtype", "fp8", "bnb_class", "xformers"}}.
Answer: the interpreter, each distribution's version, each import's outcome, each requirement's module and the
distributions that provide it, and per CUDA device a matmul in the training precision (plus one 8-bit
optimizer step and one xformers call when asked). A STEP line comes before each import and device call.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING or __package__:
    from loratrain.sdscripts.probes.probe_common import answer, findable, first_line, request, step
else:  # run by path: this folder is sys.path[0]
    from probe_common import answer, findable, first_line, request, step


def version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except Exception:
        return None


def import_one(name: str, attr: str | None, modules: dict[str, Any]) -> dict[str, Any]:
    """Import `name` (and read `attr`): {"ok", "error", "missing", "version"}."""
    entry: dict[str, Any] = {"ok": False, "error": "", "missing": False, "version": None}
    try:
        module = importlib.import_module(name)
        if attr:
            getattr(module, attr)
        entry["ok"] = True
        modules[name] = module
        top = sys.modules.get(name.split(".")[0])
        entry["version"] = str(getattr(top, "__version__", "") or "") or None
    except ModuleNotFoundError as exc:
        entry["missing"] = bool(exc.name) and (name == exc.name or name.startswith(str(exc.name) + "."))
        entry["error"] = "%s: %s" % (type(exc).__name__, exc)
    except AttributeError:
        entry["error"] = "%s has no %s" % (name, attr)
        entry["missing_attr"] = True
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a native library that fails to load raises anything, SystemExit included
        entry["error"] = first_line(exc)
    return entry


def providers() -> dict[str, list[str]]:
    """Top-level module -> the installed distributions whose files hold it."""
    try:
        return {k: list(v) for k, v in md.packages_distributions().items()}
    except Exception:
        return {}


def requirements(items: list[dict[str, Any]], modules: dict[str, Any]) -> dict[str, Any]:
    """Per requirement: its module on disk (and imported when asked), and who provides it."""
    by_module = providers() if items else {}
    out = {}
    for item in items:
        module = item["module"]
        entry: dict[str, Any] = {
            "module_found": findable(module),
            "versions": {d: version(d) for d in [item["dist"], *item.get("also", [])]},
            "providers": {d: version(d) for d in by_module.get(module, [])},
        }
        if item.get("load") and entry["module_found"]:
            step(module)
            entry["import"] = import_one(module, None, modules)
        out[item["dist"]] = entry
    return out


def call(fn: Any) -> str:
    """'ok' when `fn()` runs, else the error's first line."""
    try:
        return fn()
    except Exception as exc:
        return first_line(exc)


def gpu_checks(torch: Any, modules: dict[str, Any], gpu: dict[str, Any], out: dict[str, Any]) -> None:
    step("torch.cuda")
    try:
        available = torch.cuda.is_available()
    except Exception as exc:
        available = False
        out["gpu_note"] = "%s: %s" % (type(exc).__name__, exc)
    if not available:
        out["gpu_note"] = out["gpu_note"] or "no CUDA device"
        return
    out["torch"]["arch_list"] = list(torch.cuda.get_arch_list())
    dtype = getattr(torch, gpu["dtype"])
    for i in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(i)
        dev: dict[str, Any] = {
            "index": i,
            "name": torch.cuda.get_device_name(i),
            "capability": "%d.%d" % (major, minor),
        }
        device = torch.device("cuda", i)

        def matmul() -> str:
            a = torch.ones((16, 16), device=device, dtype=dtype)
            if gpu.get("fp8"):
                a = a.to(torch.float8_e4m3fn).to(dtype)
            b = (a @ a).float().sum().item()
            torch.cuda.synchronize(device)
            return "ok" if b == 16.0 * 256 else "wrong result %r" % b

        def bnb_step() -> str:
            p = torch.nn.Parameter(torch.ones((64, 64), device=device))
            opt = getattr(modules["bitsandbytes.optim"], gpu["bnb_class"])([p], lr=1e-3)
            p.grad = torch.ones_like(p)
            opt.step()
            torch.cuda.synchronize(device)
            return "ok"

        def attention() -> str:
            q = torch.ones((1, 16, 2, 64), device=device, dtype=torch.float16)
            modules["xformers.ops"].memory_efficient_attention(q, q, q)
            torch.cuda.synchronize(device)
            return "ok"

        step("matmul cuda:%d" % i)
        dev["matmul"] = call(matmul)
        if gpu.get("bnb_class") and "bitsandbytes.optim" in modules:
            step("8-bit optimizer step cuda:%d" % i)
            dev["bnb_step"] = call(bnb_step)
        if gpu.get("xformers") and "xformers.ops" in modules:
            step("xformers attention cuda:%d" % i)
            dev["xformers_call"] = call(attention)
        out["gpus"].append(dev)


def xformers_build(xf: Any) -> str | None:
    """The torch version xformers was compiled against (its cpp_lib.json), when it says."""
    try:
        with open(os.path.join(os.path.dirname(xf.__file__), "cpp_lib.json")) as fp:
            return json.load(fp).get("version", {}).get("torch")
    except Exception:
        return None


def main() -> None:
    asked = request()
    if asked.get("path"):
        sys.path.insert(0, asked["path"])
    out: dict[str, Any] = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "versions": {d: version(d) for d in asked["dists"]},
        "imports": {},
        "located": {name: findable(name) for name in asked["locate"]},
        "gpus": [],
        "gpu_note": "",
    }
    modules: dict[str, Any] = {}
    for item in asked["imports"]:
        name, attr = item["module"], item.get("attr")
        key = name + ("." + attr if attr else "")
        step(key)
        out["imports"][key] = import_one(name, attr, modules)
    out["requirements"] = requirements(asked.get("requirements") or [], modules)
    torch = modules.get("torch")
    if torch is not None:
        out["torch"] = {"version": torch.__version__, "cuda": getattr(torch.version, "cuda", None)}
        if "xformers" in modules:
            out["xformers"] = {"built_for_torch": xformers_build(modules["xformers"])}
        gpu_checks(torch, modules, asked["gpu"], out)
    answer(out)


if __name__ == "__main__":
    main()
