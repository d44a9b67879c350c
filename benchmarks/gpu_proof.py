"""GPU proof: one prepared script that exercises every path of loratrain that only a GPU can show.

Runs, in order, each step time-boxed (subprocess timeouts inside one overall --budget) and recorded in one
JSON file (--out; default $OUT/gpu_proof.json when OUT is set, else ./gpu_proof.json), rewritten after every
step so that a call cut off at its limit still returns what it did:

| step              | what                                                                  | expect | limit |
|-------------------|-----------------------------------------------------------------------|--------|-------|
| install           | the carried wheels into /tmp/gpu-proof-site (--target, no index)      |   20 s |  120 s |
| build_tokenizers  | the two CLIP tokenizer folders (e2e kit make_tok.py), unless carried  |   10 s |   90 s |
| build_data        | 16 images + captions (e2e kit make_data.py) and a sample-prompt file  |    3 s |   60 s |
| build_model       | a random full-size SDXL checkpoint on cuda, fp16 (make_model.py)      |   60 s |  240 s |
| doctor            | `doctor` of the guide's config on the GPU (+ an 8-bit/xformers variant)|  25 s |  120 s |
| check             | `check` of the guide's config (preflight, the fit verdict line)        |  15 s |   90 s |
| run               | `run` of the guide's config, 512 px, 4 steps, a save at 2, one sample  |   60 s |  240 s |
| fit_guide         | `fit --json`, then `fit --probe --json`: predicted vs measured peak    |   55 s |  200 s |
| fit_lora8_b4      | the same for networks.lora dim 8 at batch 4 (sdxl-lora-minimal.toml)   |   50 s |  200 s |
| fit_guide_no_gc   | the same for the guide without gradient checkpointing (the batch is    |   60 s |  200 s |
|                   | halved until `fit` predicts it fits the card, and that is recorded)    |        |       |
| interrupt_resume  | 40 steps with states every 10; SIGINT after the first state; then      |  100 s |  300 s |
|                   | `run --resume`: the records' steps must add up to 40                   |        |       |
| nan               | lr 1e8 (networks.lora, fp16): the watchdog must stop the run           |   45 s |  180 s |
| report            | `report --json` of the resumed run (or of the first run)               |   15 s |   90 s |

Expected in all: about 8.5 minutes on one H100/H200 (the column sums to 518 s; most of it is sd-scripts loading
the 6.5 GiB model in each of its seven launches). These are estimates: no GPU was lent while this was written. The
default --budget of 520 s caps the run: a step gets at most its limit and what is left of the budget (less 25 s
kept for `report`), a step that would start with under 10 s left is marked skipped ("out of time"), and a step
cut off at the budget needs at most SLACK_S more to stop cleanly, hence the device call's timeout_s of 590. Every sd-scripts launch is the real one (`loratrain run`/`fit --probe`, accelerate,
sd-scripts 48d368f, lycoris_lora 4.1.3), offline (HF_HUB_OFFLINE=1).

Three modes:

    python benchmarks/gpu_proof.py --prepare .gpu-proof      # HERE, with PyPI: sd-scripts (trimmed), wheels, kit
    python benchmarks/gpu_proof.py --plan                    # prints the device `run` call to make
    python benchmarks/gpu_proof.py --carried .gpu-proof      # THERE, on the GPU machine (no internet)
    python benchmarks/gpu_proof.py --cpu-dry                 # anywhere, no GPU, < 60 s (tests/test_gpu_proof_dry.py)

`--cpu-dry` runs what needs no GPU: the dataset, doctor, check, fit (predictions only), `run --dry-run` of every
GPU command, and the run / interrupt+resume / NaN plumbing against the fixture trainer under
tests/run/fixtures/sd_scripts (sd-scripts' arithmetic and output, no model), then `report` of that fixture run.
The GPU-only parts (install, the model build, `fit --probe`) are marked skipped with the reason.

This script calls loratrain only through its CLI (`python -m loratrain ...`) and imports none of its modules
at run time, so it keeps working while modules move. It needs only the standard library itself.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import glob
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "src" / "loratrain" / "presets" / "pony-sdxl-locon.toml"
MINIMAL = ROOT / "src" / "loratrain" / "presets" / "sdxl-lora-minimal.toml"
FIXTURE_SD_SCRIPTS = ROOT / "tests" / "run" / "fixtures" / "sd_scripts"
FIXTURE_TRAINER = "fixture trainer (tests/run/fixtures/sd_scripts: sd-scripts' step arithmetic and output, no model)"

# The commit loratrain's flag table was read from (one source: the table's own file).
SD_SCRIPTS_COMMIT = json.loads((ROOT / "src" / "loratrain" / "data" / "sd_scripts_args.json").read_text())["commit"]
# What the device image lacks or holds in another version (its python3 is 3.12 with torch 2.11, torchvision,
# numpy, pillow, opencv, einops, matplotlib, tensorboard, typer, rich, regex, ...). sd-scripts' pins at 48d368f,
# lycoris_lora 4.1.3, and loratrain's own pydantic. Each is fetched with --no-deps for cp312 manylinux.
WHEELS = [
    "accelerate==1.6.0",
    "transformers==4.54.1",
    "tokenizers==0.21.4",  # transformers 4.54.1 wants >=0.21,<0.22; the image has 0.23
    "diffusers==0.32.1",
    "huggingface-hub==0.34.3",
    "safetensors==0.4.5",
    "importlib-metadata==8.7.0",  # diffusers
    "ftfy==6.3.1",
    "wcwidth==0.2.13",  # ftfy
    "toml==0.10.2",
    "voluptuous==0.15.2",
    "imagesize==1.4.1",
    "lycoris-lora==4.1.3",
    "pydantic==2.11.7",
    "pydantic-core==2.33.2",
    "annotated-types==0.7.0",
    "typing-inspection==0.4.1",
]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"]
# sd-scripts without docs/, images/, configs/ and its Windows DLLs: the training scripts, library/, networks/.
SD_SCRIPTS_PATHS = ["library", "networks", "requirements.txt", "setup.py"]
KIT_FILES = ("make_model.py", "make_tok.py", "make_data.py")
CARRY_LIMIT_MIB = 60  # a device call carries 64 MiB with the repository; keep room for the working tree
SITE = "/tmp/gpu-proof-site"
MODEL_MIN_BYTES = 6 * 2**30  # a complete fp16 SDXL file is 6.5 GiB

STEPS = [
    "install",
    "build_tokenizers",
    "build_data",
    "build_model",
    "doctor",
    "check",
    "run",
    "fit_guide",
    "fit_lora8_b4",
    "fit_guide_no_gc",
    "interrupt_resume",
    "nan",
    "report",
]
LIMITS = {  # seconds: the most a step may take (its subprocesses are time-boxed to what is left of this)
    "install": 120,
    "build_tokenizers": 90,
    "build_data": 60,
    "build_model": 240,
    "doctor": 120,
    "check": 90,
    "run": 240,
    "fit_guide": 200,
    "fit_lora8_b4": 200,
    "fit_guide_no_gc": 200,
    "interrupt_resume": 300,
    "nan": 180,
    "report": 90,
}
# Always run, also with --only: what the other steps need (a model already on disk is reused).
BUILDS = ("install", "build_tokenizers", "build_data", "build_model")
REPORT_RESERVE_S = 25
# The whole run stops launching at BUDGET_S; a step cut off at it may take SLACK_S more to stop cleanly (loratrain's
# grace period, then SIGKILL), so the device call's timeout is BUDGET_S + SLACK_S (590 s of the 600 s allowed).
BUDGET_S = 520
SLACK_S = 70
FAILURE_LOGS = 5  # a device call returns at most 8 files: the JSON, the report page, and this many logs
LOG_BYTES = 400_000
TAIL_CHARS = 2500


class StepSkipped(Exception):
    """Raised inside a step: it cannot run here; the message is the reason."""


class StepFailed(Exception):
    """Raised inside a step: it ran and did not show what it should; the message says what."""


# --- the result file ----------------------------------------------------------------------------------------


class Proof:
    """The JSON document, rewritten after each step."""

    def __init__(self, out: Path, mode: str, budget_s: float):
        self.out = out
        self.t0 = time.monotonic()
        self.budget_s = budget_s
        self.doc: dict[str, Any] = {
            "schema": 1,
            "mode": mode,
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "finished": None,
            "seconds": None,
            "budget_s": budget_s,
            "machine": {},
            "steps": [{"name": n, "status": "pending", "seconds": None} for n in STEPS],
            "fit_table": [],
            "summary": {},
        }
        self.save()

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.t0)

    def step(self, name: str) -> dict[str, Any]:
        return next(s for s in self.doc["steps"] if s["name"] == name)

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, self.out)

    def finish(self) -> None:
        counts: dict[str, int] = {}
        for s in self.doc["steps"]:
            counts[s["status"]] = counts.get(s["status"], 0) + 1
        self.doc["summary"] = counts
        self.doc["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self.doc["seconds"] = round(time.monotonic() - self.t0, 1)
        self.save()


class Ctx:
    """What the steps share: modes, folders, the environment of every subprocess, the step being recorded."""

    def __init__(self, args: argparse.Namespace, proof: Proof):
        self.args = args
        self.proof = proof
        self.dry = bool(args.cpu_dry)
        self.work = Path(args.work).resolve()
        self.carried = Path(args.carried).resolve() if args.carried else None
        self.python = sys.executable
        self.data = self.work / "data"
        self.prompts = self.work / "sample-prompts.txt"
        self.model = self.work / "model" / "sdxl-random-fp16.safetensors"
        self.tok: Path | None = None
        # --cpu-dry: the fixture trainer's folder stands in for sd-scripts (doctor and check need a checkout).
        self.sd_scripts: Path | None = (
            FIXTURE_SD_SCRIPTS if self.dry else (self.carried / "sd-scripts") if self.carried else None
        )
        self.kit: Path | None = _find_kit(args.kit, self.carried)
        self.env = dict(os.environ)
        paths = [str(ROOT / "src")]
        if not self.dry:
            paths.insert(0, SITE)
        old = self.env.get("PYTHONPATH")
        self.env["PYTHONPATH"] = os.pathsep.join(paths + ([old] if old else []))
        self.env.update(PYTHONUNBUFFERED="1", COLUMNS="200", NO_COLOR="1")
        if self.dry:  # no tokenizers are built here: preflight warns that they are not cached, nothing more
            for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
                self.env.pop(name, None)
        else:  # the GPU machine has no internet
            self.env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        self.env.pop("LORATRAIN_SD_SCRIPTS", None)
        self.current: dict[str, Any] = {}
        self.deadline = 0.0
        self.run_out: Path | None = None  # output_dir of the `run` step
        self.resume_out: Path | None = None  # output_dir of the interrupted and resumed run
        self.card_gib: float | None = None
        self.card_name: str | None = None

    # one subprocess, time-boxed to what is left of the step, its output kept for the record
    def sh(
        self,
        argv: list[str],
        *,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess:
        left = self.deadline - time.monotonic()
        limit = max(1.0, min(timeout or left, left))
        self.current.setdefault("commands", []).append(_display(argv))
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=env or self.env,
            cwd=str(cwd or self.work),
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            stop(proc)  # loratrain stops its training the documented way; then its session is killed
            stdout, stderr = proc.communicate()
            self._tail(stdout + stderr)
            raise StepFailed(f"timed out after {limit:.0f} s: {_display(argv)[:200]}") from None
        done = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
        self._tail(stdout + stderr)
        if check and done.returncode != 0:
            raise StepFailed(f"exit {done.returncode}: {_display(argv)[:200]}")
        return done

    def _tail(self, text: str) -> None:
        text = (self.current.get("tail", "") + text)[-TAIL_CHARS:]
        self.current["tail"] = text

    def loratrain(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.sh([self.python, "-m", "loratrain", *args], **kw)

    def json_of(self, done: subprocess.CompletedProcess) -> Any:
        try:
            return json.loads(done.stdout)
        except json.JSONDecodeError:
            raise StepFailed(f"no JSON on stdout (exit {done.returncode})") from None

    def numbers(self, **values: Any) -> None:
        self.current.setdefault("numbers", {}).update(values)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _display(argv: list[str]) -> str:
    return " ".join(shlex.quote(str(a)) for a in argv)


def _find_kit(given: str | None, carried: Path | None) -> Path | None:
    candidates = [Path(given)] if given else []
    if carried:
        candidates.append(carried / "kit")
    candidates += [ROOT.parent / "shared" / "e2e-kit", Path("/work/shared/e2e-kit")]
    for c in candidates:
        if all((c / f).is_file() for f in KIT_FILES):
            return c.resolve()
    return None


# --- configs: the shipped presets with --set overrides -------------------------------------------------------


def _q(value: Any) -> str:
    """A TOML literal for --set."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def sets(**pairs: Any) -> list[str]:
    """`--set a.b=v` arguments from keyword pairs written a__b=v."""
    out = []
    for key, value in pairs.items():
        out += ["--set", f"{key.replace('__', '.')}={_q(value)}"]
    return out


def common_sets(ctx: Ctx, out: Path) -> dict[str, Any]:
    """Paths of this machine, for any config: interpreter, sd-scripts, model, data, tokenizers, output."""
    pairs: dict[str, Any] = {
        "python": ctx.python,
        "model__pretrained_model_name_or_path": str(ctx.model),
        "dataset__train_data_dir": str(ctx.data),
        "saving__output_dir": str(out),
    }
    if ctx.sd_scripts:
        pairs["sd_scripts"] = str(ctx.sd_scripts)
    if ctx.tok:
        pairs["model__tokenizer_cache_dir"] = str(ctx.tok)
    return pairs


def guide_sets(ctx: Ctx, out: Path, *, steps: int, px: int, batch: int, **extra: Any) -> list[str]:
    """The guide's config, small: resolution, steps, batch and accumulation 1; its samples and logs kept."""
    pairs = common_sets(ctx, out)
    pairs.update(
        dataset__resolution=f"{px},{px}",
        training__max_train_steps=steps,
        training__train_batch_size=batch,
        training__gradient_accumulation_steps=1,
        sampling__sample_prompts=str(ctx.prompts),
        sampling__sample_every_n_steps=steps,
        logging__logging_dir=str(out / "logs"),
    )
    pairs.update(extra)
    return sets(**pairs)


def lora8_sets(ctx: Ctx, out: Path, *, steps: int, px: int, batch: int, **extra: Any) -> list[str]:
    """The shipped minimal config as networks.lora dim 8 / alpha 4."""
    pairs = common_sets(ctx, out)
    pairs.update(
        network__network_dim=8,
        network__network_alpha=4,
        dataset__resolution=f"{px},{px}",
        training__max_train_steps=steps,
        training__train_batch_size=batch,
    )
    pairs.update(extra)
    return sets(**pairs)


FIXTURE_CONFIG = """# gpu_proof --cpu-dry: the plumbing of run, interrupt/resume and the watchdog against the fixture trainer
sd_scripts = {sds}
python = {python}
[model]
pretrained_model_name_or_path = {model}
[dataset]
train_data_dir = {data}
resolution = "512,512"
caption_extension = ".txt"
[network]
network_module = "networks.lora"
network_dim = 8
[optimizer]
learning_rate = 0.0001
[training]
max_train_steps = 4
train_batch_size = 2
[saving]
output_dir = {out}
output_name = "gpu-proof"
[precision]
mixed_precision = "no"
"""


def fixture_config(ctx: Ctx, name: str) -> tuple[Path, Path]:
    out = fresh(ctx.work / f"out-{name}")
    path = ctx.work / f"fixture-{name}.toml"
    path.write_text(
        FIXTURE_CONFIG.format(
            sds=json.dumps(str(FIXTURE_SD_SCRIPTS)),
            python=json.dumps(ctx.python),
            model=json.dumps(str(ctx.model)),
            data=json.dumps(str(ctx.data)),
            out=json.dumps(str(out)),
        ),
        encoding="utf-8",
    )
    return path, out


def fresh(out: Path) -> Path:
    """A step's output folder, emptied: a rerun on a warm machine must not meet the last run's saves."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return out


def records(out: Path) -> list[dict[str, Any]]:
    found = []
    for p in glob.glob(str(out / "loratrain-runs" / "*" / "record.json")):
        with contextlib.suppress(OSError, json.JSONDecodeError):
            found.append(json.loads(Path(p).read_text(encoding="utf-8")))
    return sorted(found, key=lambda r: str(r.get("started")))


def record_numbers(rec: dict[str, Any]) -> dict[str, Any]:
    keep = ("status", "exit_code", "steps_done", "cumulative_steps", "last_loss", "duration_s")
    out = {k: rec.get(k) for k in keep if k in rec}
    if rec.get("resume"):
        out["resume"] = rec["resume"]
    events = (rec.get("watchdog") or {}).get("events") or []
    if events:
        out["watchdog_events"] = [{k: e.get(k) for k in ("kind", "step", "message")} for e in events]
    if rec.get("failure"):
        out["failure"] = {k: rec["failure"].get(k) for k in ("cause_id", "cause")}
    return out


# --- launches that must be stopped from outside ---------------------------------------------------------------


def launch(ctx: Ctx, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    ctx.current.setdefault("commands", []).append(_display(argv))
    log = open(ctx.work / f"{ctx.current['name']}-{len(ctx.current['commands'])}.log", "w+", encoding="utf-8")
    proc = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=env or ctx.env,
        cwd=str(ctx.work),
        start_new_session=True,  # a timeout can then end loratrain with everything it started
    )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def finish(ctx: Ctx, proc: subprocess.Popen, timeout: float | None = None) -> int:
    left = ctx.deadline - time.monotonic()
    try:
        code = proc.wait(timeout=max(1.0, min(timeout or left, left)))
    except subprocess.TimeoutExpired:
        stop(proc)
        code = proc.wait()
        _read_log(ctx, proc)
        raise StepFailed("timed out; stopped with SIGTERM (then SIGKILL)") from None
    _read_log(ctx, proc)
    return code


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to loratrain (it stops its training the documented way, in the training's own session), then
    SIGKILL to loratrain's session. GPU processes still alive after a step are ended by kill_leftovers."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)  # loratrain's own escalation: --grace 20 s, then SIGKILL to the training
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _read_log(ctx: Ctx, proc: subprocess.Popen) -> None:
    log = proc.log  # type: ignore[attr-defined]
    log.flush()
    log.seek(0)
    ctx._tail(log.read())
    log.close()


# --- steps ---------------------------------------------------------------------------------------------------


def step_install(ctx: Ctx) -> None:
    if ctx.dry:
        raise StepSkipped("GPU machine only: --cpu-dry runs in this interpreter, whose packages CI installed")
    if not ctx.carried or not (ctx.carried / "wheels").is_dir():
        raise StepFailed("no carried wheels: run --prepare DIR here first and pass --carried DIR")
    wheels = sorted(glob.glob(str(ctx.carried / "wheels" / "*.whl")))
    ctx.sh(
        [ctx.python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir"]
        + ["--upgrade", "--target", SITE, *wheels],
        check=True,
    )
    probe = (
        "import importlib.metadata as m, json, torch; "
        "names=['torch','torchvision','accelerate','transformers','diffusers','lycoris-lora','pydantic','safetensors'];"
        "print(json.dumps({n: m.version(n) for n in names} | {'cuda': torch.version.cuda, "
        "'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))"
    )
    done = ctx.sh([ctx.python, "-c", probe], check=True)
    versions = json.loads(done.stdout.strip().splitlines()[-1])
    ctx.numbers(wheels=len(wheels), versions=versions)
    ctx.proof.doc["machine"]["versions"] = versions
    expected = {"accelerate": "1.6.0", "transformers": "4.54.1", "diffusers": "0.32.1", "lycoris-lora": "4.1.3"}
    wrong = {k: versions.get(k) for k, v in expected.items() if versions.get(k) != v}
    if wrong:
        raise StepFailed(f"the carried versions do not win on PYTHONPATH: {wrong}")


def step_build_tokenizers(ctx: Ctx) -> None:
    names = ("openai_clip-vit-large-patch14", "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k")
    if ctx.carried and all((ctx.carried / "tok" / n / "vocab.json").is_file() for n in names):
        ctx.tok = ctx.carried / "tok"
        ctx.numbers(source="carried (built by --prepare)")
        return
    bpe = ctx.carried / "bpe_simple_vocab_16e6.txt.gz" if ctx.carried else None
    if bpe is None or not bpe.is_file():
        bpe = _local_bpe()
    missing = StepSkipped if ctx.dry else StepFailed  # offline, sd-scripts cannot run without them
    if ctx.kit is None or bpe is None:
        raise missing(
            "needs the e2e kit's make_tok.py and CLIP's bpe_simple_vocab_16e6.txt.gz (--prepare carries both)"
        )
    has_transformers = ctx.sh([ctx.python, "-c", "import transformers"]).returncode == 0
    if not has_transformers:
        raise missing("make_tok.py needs transformers, not installed here (the device gets 4.54.1 from the wheels)")
    dest = ctx.work / "tok"
    ctx.sh([ctx.python, str(ctx.kit / "make_tok.py"), str(bpe), str(dest)], check=True)
    ctx.tok = dest
    ctx.numbers(source=f"make_tok.py from {bpe}")


def _local_bpe() -> Path | None:
    """CLIP's BPE file as loratrain finds it (clip-anytorch and the like): the one place that knows where."""
    sys.path.insert(0, str(ROOT / "src"))
    try:
        from loratrain.plan.clip_tokenizer import find_vocabulary

        source = find_vocabulary(None)
    except Exception:  # not found, or loratrain's modules moved: the caller says what is missing
        return None
    finally:
        sys.path.pop(0)
    return Path(source.path) if getattr(source, "kind", "") == "gz" else None


def step_build_data(ctx: Ctx) -> None:
    ctx.data.mkdir(parents=True, exist_ok=True)
    if ctx.kit:
        ctx.sh([ctx.python, str(ctx.kit / "make_data.py"), str(ctx.data), "--n", "16"], check=True)
        how = "e2e kit make_data.py --n 16"
    else:
        _write_data(ctx.data, 16)
        how = "this script's own writer (the e2e kit was not found): 16 flat 256x256/256x384 PNGs"
    ctx.prompts.write_text("sbjtoken, red, soft light --w 512 --h 512 --s 10 --d 7\n", encoding="utf-8")
    images = len(glob.glob(str(ctx.data / "*" / "*.png")))
    ctx.numbers(images=images, how=how, sample_prompts=str(ctx.prompts))
    if images < 16:
        raise StepFailed(f"{images} images written, 16 wanted")


def _write_data(root: Path, n: int) -> None:
    """16 images in the layout make_data.py writes (5_subject/NNN.png + NNN.txt), for a machine without the kit."""
    from PIL import Image

    sub = root / "5_subject"
    sub.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        size = (256, 256) if i % 2 == 0 else (256, 384)
        Image.new("RGB", size, (40 + 12 * i, 90, 200 - 9 * i)).save(sub / f"{i:03d}.png")
        (sub / f"{i:03d}.txt").write_text("sbjtoken, gradient, texture\n", encoding="utf-8")


def step_build_model(ctx: Ctx) -> None:
    if ctx.dry:
        _write_stand_in(ctx.model)
        raise StepSkipped(
            "GPU machine only: a 6.5 GiB build; --cpu-dry wrote a header-only stand-in with SDXL's key names "
            "(what preflight reads)"
        )
    if ctx.model.is_file() and ctx.model.stat().st_size >= MODEL_MIN_BYTES:
        ctx.numbers(gib=round(ctx.model.stat().st_size / 2**30, 2), reused=True)
        return
    if ctx.kit is None or ctx.sd_scripts is None:
        raise StepFailed("needs the kit's make_model.py and sd-scripts (--prepare carries both)")
    ctx.model.parent.mkdir(parents=True, exist_ok=True)
    ctx.sh(
        [ctx.python, str(ctx.kit / "make_model.py"), str(ctx.model), "--device", "cuda", "--dtype", "fp16"]
        + ["--sds", str(ctx.sd_scripts)],
        check=True,
    )
    ctx.numbers(gib=round(ctx.model.stat().st_size / 2**30, 2), reused=False)


def _write_stand_in(path: Path) -> None:
    """A valid safetensors file whose tensors carry SDXL checkpoint names, one float each."""
    import struct

    names = [
        "conditioner.embedders.0.transformer.text_model.embeddings.position_ids",
        "conditioner.embedders.1.model.ln_final.weight",
        "model.diffusion_model.input_blocks.1.1.proj_in.weight",
        "model.diffusion_model.label_emb.0.0.weight",
        "first_stage_model.decoder.conv_in.weight",
    ]
    header: dict[str, Any] = {"__metadata__": {"note": "gpu_proof --cpu-dry stand-in"}}
    for i, name in enumerate(names):
        header[name] = {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + struct.pack(f"<{len(names)}f", *([0.0] * len(names))))


def step_doctor(ctx: Ctx) -> None:
    out = ctx.work / "out-doctor"
    base = guide_sets(ctx, out, steps=4, px=512, batch=2)
    done = ctx.loratrain("doctor", str(GUIDE), *base, "--json")
    data = ctx.json_of(done)
    checks = {c.get("name"): c.get("status") for c in data.get("checks", [])}
    ctx.numbers(ok=data.get("ok"), exit_code=done.returncode, checks=checks, errors=data.get("errors"))
    if ctx.dry:
        ctx.numbers(variant_8bit_xformers="GPU machine only (its 8-bit step and xformers call need CUDA)")
    else:
        _doctor_variant(ctx, base)
    if done.returncode != 0 or not data.get("ok"):
        raise StepFailed(f"doctor found problems: {data.get('errors')}")


def _doctor_variant(ctx: Ctx, base: list[str]) -> None:
    """doctor with AdamW8bit and xformers: one 8-bit step and one xformers call where they are installed, else
    the missing-package errors (the image has neither; their wheels are over what a call carries)."""
    have = {}
    for module in ("bitsandbytes", "xformers"):
        have[module] = ctx.sh([ctx.python, "-c", f"import {module}"]).returncode == 0
    variant = base + sets(optimizer__optimizer_type="AdamW8bit", training__xformers=True, training__sdpa=False)
    vdone = ctx.loratrain("doctor", str(GUIDE), *variant, "--json")
    with contextlib.suppress(StepFailed):
        vdata = ctx.json_of(vdone)
        ctx.numbers(
            variant_8bit_xformers={
                "installed": have,
                "exit_code": vdone.returncode,
                "checks": {c.get("name"): [c.get("status"), c.get("detail")] for c in vdata.get("checks", [])},
                "note": "errors are expected for a package the image lacks (the wheels are over what a call carries)",
            }
        )


def step_check(ctx: Ctx) -> None:
    out = ctx.work / "out-check"
    done = ctx.loratrain("check", str(GUIDE), *guide_sets(ctx, out, steps=4, px=512, batch=2), "--json")
    data = ctx.json_of(done)
    ctx.numbers(ok=data.get("ok"), exit_code=done.returncode, warnings=data.get("warnings"))
    if done.returncode != 0:
        raise StepFailed(f"check exit {done.returncode}: {data.get('errors') or data}")


def step_run(ctx: Ctx) -> None:
    out = fresh(ctx.work / "out-run")
    args = guide_sets(ctx, out, steps=4, px=512, batch=2, saving__save_every_n_steps=2)
    dry_run_check(ctx, GUIDE, args)
    if ctx.dry:
        config, out = fixture_config(ctx, "run")
        code = finish(
            ctx, launch(ctx, [ctx.python, "-m", "loratrain", "run", str(config), "--plain", "--no-preflight"])
        )
        trainer = FIXTURE_TRAINER
    else:
        code = finish(
            ctx, launch(ctx, [ctx.python, "-m", "loratrain", "run", str(GUIDE), *args, "--plain", *gate(ctx)])
        )
        trainer = "sd-scripts " + SD_SCRIPTS_COMMIT[:7]
    ctx.run_out = out
    recs = records(out)
    saves = sorted(p.name for p in out.glob("*.safetensors"))
    samples = len(list((out / "sample").glob("*.png")))
    ctx.numbers(trainer=trainer, launch_exit_code=code, saves=saves, samples=samples)
    ctx.numbers(**(record_numbers(recs[-1]) if recs else {}))
    if code != 0 or not recs or recs[-1].get("status") != "succeeded" or not saves:
        raise StepFailed(f"exit {code}, record {recs[-1].get('status') if recs else None}, saves {saves}")


def gate(ctx: Ctx) -> list[str]:
    """GPU mode: when doctor failed, the runs go on without preflight (which runs the same probe and would stop
    them), so that one lent GPU session still measures the rest; the step records that it did."""
    if ctx.dry or ctx.proof.step("doctor")["status"] != "failed":
        return []
    ctx.numbers(preflight="skipped (--no-preflight): doctor failed, see its step")
    return ["--no-preflight"]


def _card(ctx: Ctx) -> None:
    if ctx.card_gib is not None or ctx.dry:
        return
    exe = shutil.which("nvidia-smi")
    if not exe:
        return
    done = ctx.sh([exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"])
    line = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) >= 2:
        ctx.card_name, ctx.card_gib = parts[0], float(parts[1]) / 1024
        ctx.proof.doc["machine"].update(gpu=parts[0], memory_gib=round(ctx.card_gib, 1), driver=parts[-1])


def _fit(ctx: Ctx, label: str, config: Path, args: list[str], adapt_batch: int | None = None) -> None:
    """Predicted peak with `fit --json`; on a GPU, measured with `fit --probe --json`; a row of the table."""
    _card(ctx)
    vram = ["--vram", f"{ctx.card_gib:.2f}"] if ctx.card_gib else ["--gpu", "h100"]
    data = ctx.json_of(ctx.loratrain("fit", str(config), *args, *vram, "--json"))
    predicted = data.get("peak_gib")
    if ctx.card_gib is None and (data.get("gpu") or {}).get("gib"):  # --cpu-dry: the H100 of fit's table
        ctx.card_name, ctx.card_gib = f"{data['gpu'].get('name')} (fit's table, no GPU here)", data["gpu"]["gib"]
    note = None
    batch = adapt_batch
    if adapt_batch and ctx.card_gib and predicted and predicted > 0.92 * ctx.card_gib:
        first = predicted
        while batch and batch > 1 and predicted > 0.92 * ctx.card_gib:
            batch //= 2
            trial = args + sets(training__train_batch_size=batch)
            data = ctx.json_of(ctx.loratrain("fit", str(config), *trial, *vram, "--json"))
            predicted = data.get("peak_gib")
        args = args + sets(training__train_batch_size=batch)
        note = f"batch {adapt_batch} is predicted at {first} GiB, over this card: measured at batch {batch}"
    ctx.numbers(predicted_gib=predicted, verdict=data.get("verdict"), facts=_facts(data), note=note)
    row = {"config": label, "card": ctx.card_name, "predicted_gib": predicted, "measured_gib": None, "error_pct": None}
    if note:
        row["note"] = note
    ctx.proof.doc["fit_table"].append(row)
    if ctx.dry:
        raise StepSkipped(f"fit --probe needs a GPU and nvidia-smi; predicted peak {predicted} GiB (no probe)")
    done = ctx.loratrain("fit", str(config), *args, *vram, "--probe", "--probe-steps", "3", "--json")
    probe = dict((ctx.json_of(done) or {}).get("probe") or {})
    if probe.get("log_tail"):  # a failed probe: the end of its training log (its folder is deleted)
        ctx._tail("\n" + probe.pop("log_tail"))
    measured = probe.get("measured_peak_gib")
    error = round(100 * (predicted / measured - 1), 1) if measured and predicted else None
    row.update(measured_gib=round(measured, 2) if measured else None, error_pct=error)
    ctx.numbers(probe=probe, measured_gib=row["measured_gib"], error_pct=error)
    if done.returncode != 0 or measured is None:
        raise StepFailed(f"probe exit {done.returncode}, measured {measured}")


def _facts(data: dict[str, Any]) -> dict[str, Any]:
    f = data.get("facts") or {}
    keys = ("batch", "resolution", "mixed_precision", "attention", "gradient_checkpointing", "text_encoders_trained")
    return {k: f.get(k) for k in keys}


def _probe_out(ctx: Ctx) -> Path:
    return ctx.work / "out-probe"  # fit --probe writes into a temporary folder of its own; this one stays empty


def step_fit_guide(ctx: Ctx) -> None:
    _fit(
        ctx,
        "guide (pony LoCon, fp16, batch 8, 1024 px)",
        GUIDE,
        guide_sets(ctx, _probe_out(ctx), steps=3, px=1024, batch=8),
    )


def step_fit_lora8_b4(ctx: Ctx) -> None:
    _fit(
        ctx,
        "networks.lora dim 8, bf16, batch 4, 1024 px",
        MINIMAL,
        lora8_sets(ctx, _probe_out(ctx), steps=3, px=1024, batch=4),
    )


def step_fit_guide_no_gc(ctx: Ctx) -> None:
    args = guide_sets(ctx, _probe_out(ctx), steps=3, px=1024, batch=8, training__gradient_checkpointing=False)
    _fit(ctx, "guide without gradient checkpointing", GUIDE, args, adapt_batch=8)


def _wait_for_state(ctx: Ctx, proc: subprocess.Popen, out: Path, settle_s: float) -> Path | None:
    """The first `*-state/train_state.json` this launch writes, or None when the launch ended first."""
    while proc.poll() is None and time.monotonic() < ctx.deadline:
        found = sorted(glob.glob(str(out / "*-state" / "train_state.json")))
        if found:
            time.sleep(settle_s)  # accelerate may still be writing the folder's other files
            return Path(found[0]).parent
        time.sleep(0.25)
    return None


def dry_run_check(ctx: Ctx, config: Path, args: list[str]) -> None:
    """`run --dry-run --json` of the exact GPU command: the config and every --set are valid (both modes)."""
    done = ctx.loratrain("run", str(config), *args, "--dry-run", "--json")
    argv = ctx.json_of(done).get("argv", []) if done.returncode == 0 else []
    ctx.numbers(dry_run_argv_len=len(argv))
    if not argv:
        raise StepFailed(f"run --dry-run of the GPU command failed (exit {done.returncode})")


def step_interrupt_resume(ctx: Ctx) -> None:
    planned = 40
    out = fresh(ctx.work / "out-resume")
    args = guide_sets(
        ctx,
        out,
        steps=planned,
        px=512,
        batch=2,
        saving__save_state=True,
        saving__save_every_n_steps=10,
        sampling__sample_every_n_steps=planned,
    )
    dry_run_check(ctx, GUIDE, args)
    base = [ctx.python, "-m", "loratrain", "run", str(GUIDE), *args, "--plain", "--grace", "20"]
    env = env_resume = ctx.env
    settle = 1.0
    if ctx.dry:
        config, out = fixture_config(ctx, "resume")
        text = config.read_text(encoding="utf-8")
        text = text.replace("max_train_steps = 4", f"max_train_steps = {planned}")
        text = text.replace(
            'output_name = "gpu-proof"', 'output_name = "gpu-proof"\nsave_state = true\nsave_every_n_steps = 10'
        )
        config.write_text(text, encoding="utf-8")
        base = [ctx.python, "-m", "loratrain", "run", str(config), "--plain", "--no-preflight"]
        # Fast to the first state, then slow enough that the SIGINT surely lands before the end on a busy machine.
        env = dict(ctx.env, FIXTURE_STEP_S="0.02", FIXTURE_SLOW_FROM="11", FIXTURE_SLOW_S="0.25")
        env_resume, settle = dict(ctx.env, FIXTURE_STEP_S="0.02"), 0.3
    else:
        base += gate(ctx)
    ctx.resume_out = out
    ctx.numbers(trainer=FIXTURE_TRAINER if ctx.dry else "sd-scripts " + SD_SCRIPTS_COMMIT[:7])
    first = launch(ctx, base, env)
    state = _wait_for_state(ctx, first, out, settle)
    if state is None:
        code = finish(ctx, first)
        raise StepFailed(f"no state folder appeared before the first launch ended (exit {code})")
    first.send_signal(signal.SIGINT)
    code1 = finish(ctx, first, timeout=120)
    code2 = finish(ctx, launch(ctx, base + ["--resume"], env_resume))
    recs = records(out)
    ctx.numbers(
        planned=planned,
        interrupted_at_state=state.name,
        exit_codes=[code1, code2],
        launches=[record_numbers(r) for r in recs],
    )
    if len(recs) != 2:
        raise StepFailed(f"{len(recs)} run records, 2 expected")
    a, b = recs
    resume = b.get("resume") or {}
    problems = []
    if code1 != 130 or a.get("status") != "interrupted":
        problems.append(f"first launch: exit {code1}, status {a.get('status')} (130, interrupted expected)")
    if code2 != 0 or b.get("status") != "succeeded":
        problems.append(f"resumed launch: exit {code2}, status {b.get('status')}")
    if b.get("cumulative_steps") != planned:
        problems.append(f"cumulative_steps {b.get('cumulative_steps')} != planned {planned}")
    if resume.get("steps_this_launch") != b.get("steps_done"):
        problems.append(
            f"predicted {resume.get('steps_this_launch')} steps for the resume, {b.get('steps_done')} trained"
        )
    if problems:
        raise StepFailed("; ".join(problems))


def step_nan(ctx: Ctx) -> None:
    out = fresh(ctx.work / "out-nan")
    args = lora8_sets(
        ctx, out, steps=200, px=512, batch=2, optimizer__learning_rate=1e8, precision__mixed_precision="fp16"
    )
    dry_run_check(ctx, MINIMAL, args)
    argv = [ctx.python, "-m", "loratrain", "run", str(MINIMAL), *args, "--plain", "--grace", "20"]
    env, how = ctx.env, "networks.lora dim 8, learning_rate 1e8, fp16 mixed precision"
    if ctx.dry:
        config, out = fixture_config(ctx, "nan")
        config.write_text(config.read_text(encoding="utf-8").replace("max_train_steps = 4", "max_train_steps = 200"))
        argv = [ctx.python, "-m", "loratrain", "run", str(config), "--plain", "--no-preflight"]
        env = dict(ctx.env, FIXTURE_NAN_AT="3", FIXTURE_STEP_S="0.05")
        how = "fixture trainer: NaN injected from step 3 (FIXTURE_NAN_AT); the stand-in does not train"
    else:
        argv += gate(ctx)
    code = finish(ctx, launch(ctx, argv, env))
    recs = records(out)
    rec = recs[-1] if recs else {}
    events = [e for e in (rec.get("watchdog") or {}).get("events", []) if e.get("kind") == "nan"]
    ctx.numbers(how=how, launch_exit_code=code)
    ctx.numbers(**record_numbers(rec))
    if rec.get("status") != "stopped" or not events:
        raise StepFailed(f"status {rec.get('status')}, NaN events {len(events)}: the watchdog did not stop the run")
    if (rec.get("steps_done") or 0) >= 50:
        raise StepFailed(f"stopped only at step {rec.get('steps_done')}: the watchdog should stop within a few steps")


def step_report(ctx: Ctx) -> None:
    target = ctx.resume_out if ctx.resume_out and records(ctx.resume_out) else ctx.run_out
    if target is None or not target.exists():
        raise StepSkipped("no run to report on (the run and interrupt_resume steps did not run)")
    folder = ctx.work / "report"
    done = ctx.loratrain("report", str(target), "-o", str(folder), "--json")
    data = ctx.json_of(done)
    html = folder / "report.html"
    ctx.numbers(
        run=str(target),
        exit_code=done.returncode,
        html_bytes=html.stat().st_size if html.is_file() else None,
        **report_summary(data),
    )
    if ctx.args.out_dir_files and html.is_file():
        shutil.copy(html, ctx.proof.out.parent / "gpu_proof_report.html")
    if done.returncode != 0 or not html.is_file():
        raise StepFailed(f"report exit {done.returncode}")


def report_summary(data: Any) -> dict[str, Any]:
    """The report's numbers that say whether it saw the run: saves and their health, curves, samples, resumes."""
    if not isinstance(data, dict):
        return {}
    curves = data.get("curves") or {}
    samples = data.get("samples") or {}
    saves = data.get("saves") or []
    return {
        "saves": [
            {
                "file": Path(str(h.get("file"))).name,
                "step": h.get("step"),
                "ok": h.get("ok"),
                "modules": h.get("modules"),
                "total_norm": h.get("total_norm"),
                "flags": h.get("flags"),
            }
            for h in saves
        ],
        "curves": {tag: len(c.get("steps") or []) for tag, c in (curves.get("series") or {}).items()},
        "curves_reason": curves.get("reason"),
        "resumes_marked": curves.get("resumes"),
        "samples": len(samples.get("cells") or []),
        "samples_reason": samples.get("reason"),
        "notes": data.get("notes"),
    }


STEP_FUNCS: dict[str, Callable[[Ctx], None]] = {
    "install": step_install,
    "build_tokenizers": step_build_tokenizers,
    "build_data": step_build_data,
    "build_model": step_build_model,
    "doctor": step_doctor,
    "check": step_check,
    "run": step_run,
    "fit_guide": step_fit_guide,
    "fit_lora8_b4": step_fit_lora8_b4,
    "fit_guide_no_gc": step_fit_guide_no_gc,
    "interrupt_resume": step_interrupt_resume,
    "nan": step_nan,
    "report": step_report,
}
_TRAIN = ("install", "build_tokenizers", "build_data", "build_model")
NEEDS = {  # a step whose input failed is skipped with that reason instead of failing a second time
    "build_tokenizers": ("install",),
    "build_model": ("install",),
    "doctor": ("install", "build_tokenizers"),
    "check": _TRAIN,
    "run": _TRAIN,
    "fit_guide": _TRAIN,
    "fit_lora8_b4": _TRAIN,
    "fit_guide_no_gc": _TRAIN,
    "interrupt_resume": _TRAIN,
    "nan": _TRAIN,
}


def kill_leftovers(ctx: Ctx) -> list[int]:
    """GPU mode: compute processes still on the GPU after a step (a stopped run's stragglers) are ended, so that
    the next probe measures its own memory. On the lent machine every such process is this script's."""
    exe = shutil.which("nvidia-smi")
    if ctx.dry or not exe:
        return []
    try:
        done = subprocess.run(
            [exe, "--query-compute-apps=pid", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    pids = [int(p) for p in done.stdout.split() if p.strip().isdigit()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    if pids:
        time.sleep(3)
    return pids


def keep_log(ctx: Ctx, name: str) -> None:
    """With $OUT: the end of a failed step's last launch log comes back beside the JSON (a few, small)."""
    if not ctx.args.out_dir_files:
        return
    logs = sorted(ctx.work.glob(f"{name}-*.log"), key=lambda p: p.stat().st_mtime)
    kept = list(ctx.proof.out.parent.glob("gpu_proof_*.log"))
    if not logs or len(kept) >= FAILURE_LOGS:
        return
    data = logs[-1].read_bytes()[-LOG_BYTES:]
    dest = ctx.proof.out.parent / f"gpu_proof_{name}.log"
    dest.write_bytes(data)
    ctx.current["log"] = dest.name


def run_steps(ctx: Ctx) -> None:
    proof = ctx.proof
    only = set(ctx.args.only.split(",")) if ctx.args.only else None
    skip = set(ctx.args.skip.split(",")) if ctx.args.skip else set()
    for name in STEPS:
        rec = proof.step(name)
        ctx.current = rec
        rec["status"] = "running"
        started = time.monotonic()
        reserve = REPORT_RESERVE_S if name != "report" else 0
        left = proof.left() - reserve
        failed_needs = [n for n in NEEDS.get(name, ()) if proof.step(n)["status"] == "failed"]
        try:
            if only is not None and name not in only and name not in BUILDS:
                raise StepSkipped("not selected (--only)")
            if name in skip:
                raise StepSkipped("--skip")
            if failed_needs:
                raise StepSkipped(f"needs {', '.join(failed_needs)}, which failed")
            if left < 10:
                raise StepSkipped(f"out of time: {proof.left():.0f} s of the {proof.budget_s:.0f} s budget left")
            ctx.deadline = time.monotonic() + min(LIMITS[name], left)
            STEP_FUNCS[name](ctx)
            rec["status"] = "ok"
        except StepSkipped as exc:
            rec["status"], rec["reason"] = "skipped", str(exc)
        except StepFailed as exc:
            rec["status"], rec["reason"] = "failed", str(exc)
        except Exception as exc:  # a bug here must not lose the steps already recorded
            rec["status"], rec["reason"] = "failed", f"{type(exc).__name__}: {exc}"
        rec["seconds"] = round(time.monotonic() - started, 1)
        leftovers = kill_leftovers(ctx)
        if leftovers:
            rec["killed_gpu_pids"] = leftovers
        if rec["status"] == "failed":
            keep_log(ctx, name)
        print(f"[gpu_proof] {name}: {rec['status']} in {rec['seconds']} s {rec.get('reason', '')}", flush=True)
        proof.save()


# --- --prepare and --plan ------------------------------------------------------------------------------------


def prepare(dest: Path, args: argparse.Namespace) -> int:
    """CPU side, with PyPI: everything the GPU machine cannot fetch, in one ignored folder to carry."""
    dest = dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"sd_scripts_commit": SD_SCRIPTS_COMMIT, "wheels": WHEELS}
    # 1. sd-scripts at 48d368f, trimmed
    sds = dest / "sd-scripts"
    if not (sds / "sdxl_train_network.py").is_file():
        if args.sd_scripts_git:
            git = ["git", f"--git-dir={args.sd_scripts_git}"]
            top = subprocess.run(
                git + ["ls-tree", "--name-only", SD_SCRIPTS_COMMIT], capture_output=True, text=True, check=True
            ).stdout.split()
            paths = SD_SCRIPTS_PATHS + [p for p in top if p.endswith(".py")]
            sds.mkdir(parents=True, exist_ok=True)
            archive = subprocess.run(git + ["archive", SD_SCRIPTS_COMMIT, *paths], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(sds)], input=archive.stdout, check=True)
        elif args.sd_scripts:
            src = Path(args.sd_scripts)
            ignore = shutil.ignore_patterns(".git", "docs", "images", "configs", "bitsandbytes_windows", "tests")
            shutil.copytree(src, sds, ignore=ignore, dirs_exist_ok=True)
        else:
            print("--prepare needs --sd-scripts-git GIT_DIR (a clone holding 48d368f) or --sd-scripts WORK_TREE")
            return 2
    # 2. the wheels
    wheels = dest / "wheels"
    wheels.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # this machine's pip settings prefer local CPU/cp311 wheels
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12"]
    cmd += ["--implementation", "cp", "-d", str(wheels)]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    print("+", _display(cmd + WHEELS), flush=True)
    subprocess.run(cmd + WHEELS, env=env, check=True)
    # 3. the e2e kit's three scripts and CLIP's BPE file (the tokenizers are built there unless transformers is here)
    kit = _find_kit(args.kit, None)
    if kit is None:
        print("--prepare: the e2e kit (make_model.py, make_tok.py, make_data.py) was not found: pass --kit DIR")
        return 2
    (dest / "kit").mkdir(exist_ok=True)
    for f in KIT_FILES:
        shutil.copy(kit / f, dest / "kit" / f)
    bpe = _local_bpe()
    if bpe is None:
        print("--prepare: CLIP's bpe_simple_vocab_16e6.txt.gz not found: pip install --no-deps clip-anytorch")
        return 2
    shutil.copy(bpe, dest / bpe.name)
    tok_note = "built on the GPU machine by make_tok.py (transformers 4.54.1 from the wheels)"
    with contextlib.suppress(ImportError):
        import transformers  # noqa: F401

        subprocess.run([sys.executable, str(dest / "kit" / "make_tok.py"), str(bpe), str(dest / "tok")], check=True)
        tok_note = "built here by make_tok.py"
    manifest["tokenizers"] = tok_note
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    manifest["mib"] = round(size / 2**20, 1)
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"prepared {dest}: {manifest['mib']} MiB ({len(list(wheels.glob('*.whl')))} wheels); tokenizers {tok_note}")
    if size > CARRY_LIMIT_MIB * 2**20:
        print(f"too large to carry: over {CARRY_LIMIT_MIB} MiB")
        return 1
    return 0


PLAN = """\
GPU proof: how a session with a lent GPU runs it (15 minutes of device time in all, one call).

1. Here, before any device call (CPU, PyPI allowed; about a minute):
     git check-ignore -q .gpu-proof || echo '/.gpu-proof/' >> .git/info/exclude   # .gitignore has it
     fetch github:kohya-ss/sd-scripts   (the session's fetch tool; gives /work/.mirror/kohya-ss+sd-scripts/repo)
     .venv/bin/python benchmarks/gpu_proof.py --prepare .gpu-proof \\
         --sd-scripts-git /work/.mirror/kohya-ss+sd-scripts/repo --kit ../shared/e2e-kit
   It writes .gpu-proof/{{sd-scripts (trimmed, ~4 MB), wheels (~25 MB, cp312 manylinux), kit, bpe, MANIFEST.json}}
   and refuses above {limit} MiB. Check it: .venv/bin/python benchmarks/gpu_proof.py --cpu-dry (under a minute).

   The device call sends the checkout the SESSION was started in (also when a helper in another worktree makes
   the call): prepare .gpu-proof in that checkout's root, and have this script there.

2. One device call (the `run` tool); status must say can_start_another, with at least 12 minutes left:
     command:   {command}
     carry:     [".gpu-proof"]
     timeout_s: {timeout}
   The script stops launching at --budget {budget} s and writes $OUT/gpu_proof.json after every step
   (and $OUT/gpu_proof_report.html), so the JSON comes back even when the call is cut off.

3. Right after it: give_back (unless rerunning at once; the machine stays warm only 30 s, and a
   fresh one needs 4 minutes of device time left). A rerun of some steps on the warm machine reuses the model:
     python3 benchmarks/gpu_proof.py --carried .gpu-proof --only fit_guide,nan --budget 200

4. Put the fit_table rows into docs/fit.md "Measured on a GPU" (card from machine.gpu) and the note.
"""


def plan_text(budget: int = BUDGET_S) -> str:
    command = f"PYTHONUNBUFFERED=1 python3 benchmarks/gpu_proof.py --carried .gpu-proof --budget {budget}"
    return PLAN.format(command=command, timeout=budget + SLACK_S, budget=budget, limit=CARRY_LIMIT_MIB)


# --- main ----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--cpu-dry", action="store_true", help="no GPU: run what can run, mark the rest skipped")
    mode.add_argument("--prepare", metavar="DIR", help="CPU side: fetch and trim what the GPU machine needs into DIR")
    mode.add_argument("--plan", action="store_true", help="print the device call a session should make")
    ap.add_argument("--carried", metavar="DIR", help="the folder --prepare wrote (carried with the device call)")
    ap.add_argument(
        "--work", metavar="DIR", help="where models, data and runs go (default /tmp/gpu-proof; dry: a temp folder)"
    )
    ap.add_argument("--out", metavar="FILE", help="the JSON file (default $OUT/gpu_proof.json, else ./gpu_proof.json)")
    ap.add_argument("--budget", type=float, default=BUDGET_S, help=f"seconds for all steps (default {BUDGET_S})")
    ap.add_argument("--only", help="comma-separated steps to run (the builds run as needed)")
    ap.add_argument("--skip", help="comma-separated steps to skip")
    ap.add_argument("--kit", help="the e2e kit folder (default: the carried kit, ../shared/e2e-kit)")
    ap.add_argument("--sd-scripts-git", help="--prepare: a git dir holding sd-scripts 48d368f")
    ap.add_argument("--sd-scripts", help="--prepare: an sd-scripts work tree at 48d368f (copied without docs)")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = str(Path(os.environ["OUT"]) / "gpu_proof.json") if os.environ.get("OUT") else "gpu_proof.json"
    args.out_dir_files = bool(os.environ.get("OUT")) and not args.cpu_dry
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plan:
        print(plan_text(int(args.budget)))
        return 0
    if args.prepare:
        return prepare(Path(args.prepare), args)
    cleanup = None
    if args.work is None:
        if args.cpu_dry:
            cleanup = tempfile.mkdtemp(prefix="gpu-proof-dry-")
            args.work = cleanup
        else:
            args.work = "/tmp/gpu-proof"
    Path(args.work).mkdir(parents=True, exist_ok=True)
    proof = Proof(Path(args.out).resolve(), "cpu-dry" if args.cpu_dry else "gpu", args.budget)
    ctx = Ctx(args, proof)
    proof.doc["machine"].update(python=sys.version.split()[0], executable=sys.executable, work=str(ctx.work))
    proof.doc["plan"] = plan_text(int(args.budget)) if not args.cpu_dry else None
    try:
        run_steps(ctx)
    finally:
        proof.finish()
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)
    print(f"[gpu_proof] {proof.doc['summary']} in {proof.doc['seconds']} s -> {proof.out}")
    return 1 if proof.doc["summary"].get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
