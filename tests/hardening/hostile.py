"""A generator of hostile inputs for every verb, and an in-process runner that judges each case.

Each `Case` builds its input files under a fresh folder, runs one `loratrain` command in-process (typer's
CliRunner, the same app `main()` runs) under a wall-clock bound, and is judged on what a user is promised:
no uncaught exception (no traceback), the verb's exit code (2 for a refusal), no hang, and on a refusal no
file created, changed or removed under the folder. The cases come from a mutator over the shipped configs
(every leaf replaced by values of the wrong shape, with NUL bytes, non-finite, huge, nested hundreds deep)
and from hand-written families for datasets, prompt files, import sources, LoRA files, --set and slurm.
Class numbers follow issue 10.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import struct
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from helpers import COLUMNS, CONFIGS, SDXL_KEYS, tomllib

REFUSE = frozenset({2})
OK = frozenset({0})
EITHER = frozenset({0, 2})


class Hang(Exception):
    """Raised by the timer inside a case that ran past its bound."""


class Raw(str):
    """TOML text written as is (a value nested hundreds deep, a bare inf)."""


@dataclass
class Case:
    cls: int
    name: str
    build: Callable[[Path], list[str]]  # writes the inputs under the folder, returns the CLI arguments
    expect: frozenset = REFUSE
    needles: tuple[str, ...] = ()  # must appear in the output
    forbid: tuple[str, ...] = ()  # must not appear in the output
    writes: bool = False  # the verb may write files under the folder even when it succeeds
    timeout: float = 20.0
    check: Callable[[Path, "Outcome"], str | None] | None = None  # an extra judgement: a complaint or None
    unprivileged: bool = False  # run as a user without root's power to read anything (see run_case)
    always: bool = False  # in every CI sample, whatever the class's stride


@dataclass
class Outcome:
    code: int | None
    output: str
    exception: BaseException | None
    seconds: float
    touched: list[str] = field(default_factory=list)
    complaint: str | None = None

    def failures(self, case: Case) -> list[str]:
        found = []
        if isinstance(self.exception, Hang):
            found.append(f"hang: over {case.timeout}s")
        elif self.exception is not None and not isinstance(self.exception, SystemExit):
            found.append(f"traceback: {type(self.exception).__name__}: {str(self.exception)[:200]}")
        elif self.code not in case.expect:
            found.append(f"exit {self.code}, expected {sorted(case.expect)}")
        if "Traceback (most recent call last)" in self.output:
            found.append("traceback printed")
        if self.touched and (self.code != 0 or not case.writes):
            found.append(f"files touched: {self.touched[:3]}")
        for needle in case.needles:
            if needle not in self.output:
                found.append(f"missing {needle!r} in output")
        if self.complaint:
            found.append(self.complaint)
        for word in case.forbid:
            if word in self.output:
                found.append(f"{word!r} in output")
        return found


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under `folder` (symlinks not followed): kind, size, mtime and a hash of small files."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(folder)):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            digest = ""
            if os.path.isfile(full) and not os.path.islink(full) and st.st_size < 1 << 22:
                try:
                    with open(full, "rb") as fh:
                        digest = hashlib.sha1(fh.read()).hexdigest()
                except OSError:
                    digest = "unreadable"
            out[os.fsdecode(full)] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


def _app():
    from loratrain import cli

    cli._register()
    return cli.app


def _alarm(signum, frame):
    raise Hang()


def _bound(verb: str) -> float:
    """Seconds a dataset case may take: `check` without an sd-scripts folder still runs the whole preflight
    (the GPU scan and the interpreter probe import torch in a subprocess), so it gets twice the scan's 15 s."""
    return 30.0 if verb == "preflight" else 15.0


def run_case(case: Case, folder: Path) -> Outcome:
    """Build the case under `folder`, run it in-process under its time bound, and compare the folder."""

    if case.unprivileged:
        return _run_unprivileged(case, folder)
    return _run_in(case, folder)


def _run_in(case: Case, folder: Path) -> Outcome:
    from typer.testing import CliRunner

    folder.mkdir(parents=True, exist_ok=True)
    args = case.build(folder)
    before = snapshot(folder)
    runner = CliRunner()
    env = {"COLUMNS": COLUMNS, "LORATRAIN_SD_SCRIPTS": "", "LORATRAIN_CACHE_DIR": str(folder.parent / "cache")}
    drop = case.unprivileged and os.geteuid() == 0
    if drop:  # root reads any file: become `nobody` (effective ids only, so root can come back)
        _warm_up()  # the verbs' modules are loaded while the interpreter's own files can still be read
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, case.timeout)
    start = time.monotonic()
    try:
        result = runner.invoke(_app(), args, env=env, catch_exceptions=True)
        code, exception = result.exit_code, result.exception
        output = result.output + (result.stderr if _has_stderr(result) else "")
    except Hang as exc:  # raised outside the runner's own try (rare)
        code, exception, output = None, exc, ""
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if drop:
            os.seteuid(0)
            os.setegid(0)
    seconds = time.monotonic() - start
    after = snapshot(folder)
    touched = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    outcome = Outcome(code, output, exception, seconds, touched)
    if case.check is not None and exception is None:
        outcome.complaint = case.check(folder, outcome)
    return outcome


NOBODY = 65534
_WARM: list[bool] = []


def _warm_up() -> None:
    """Run each verb the unprivileged cases use once, as root, so every module they import lazily is loaded
    (as `nobody` the interpreter's own folder, under /root here, cannot be read)."""
    import tempfile

    from typer.testing import CliRunner

    if _WARM:
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = material(folder)
        data = base_config(paths)
        data.setdefault("sampling", {}).update({"sample_prompts": paths["sample_prompts"], "sample_every_n_epochs": 1})
        (folder / "run.toml").write_text(dumps(data), encoding="utf-8")
        (folder / "gui.json").write_text(GUI.format('"epoch": 1'), encoding="utf-8")
        runner = CliRunner()
        import torch
        from safetensors.torch import save_file

        name = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"
        save_file(
            {
                f"{name}.lora_down.weight": torch.randn(4, 12),
                f"{name}.lora_up.weight": torch.randn(16, 4),
                f"{name}.alpha": torch.tensor(2.0),
            },
            str(folder / "lora.safetensors"),
        )
        runner.invoke(
            _app(), ["shrink", str(folder / "lora.safetensors"), "--rank", "2", "-o", str(folder / "small.safetensors")]
        )
        for args in (
            ["plan", "run.toml"],
            ["check", "run.toml", "--no-preflight"],
            ["prompts", "prompts.txt"],
            ["import", "gui.json"],
            ["prompts", "missing.toml"],
            ["plan", "missing.toml"],
        ):
            runner.invoke(_app(), [str(folder / a) if a.endswith((".toml", ".txt", ".json")) else a for a in args])
    import zoneinfo  # noqa: F401  (pydantic imports it when it builds an error)

    _WARM.append(True)


def _run_unprivileged(case: Case, folder: Path) -> Outcome:
    """The case in a folder `nobody` can reach (a test's tmp_path sits in a root-only folder)."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="loratrain-unreadable-"))
    os.chmod(base, 0o755)
    try:
        inner = Case(**{**case.__dict__, "unprivileged": False})
        inner.unprivileged = True  # run_case's privilege drop, without coming back here
        return _run_in(inner, base / "case")
    finally:
        _unlock(base)
        shutil.rmtree(base, ignore_errors=True)


def _has_stderr(result) -> bool:
    try:
        return bool(result.stderr)
    except ValueError:
        return False


# ---------------------------------------------------------------- material


def write_safetensors(path: Path, names: list[str] = SDXL_KEYS, dtype: str = "F32") -> Path:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    for i, name in enumerate(names):
        header[name] = {"dtype": dtype, "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(struct.pack("<f", 0.25) for _ in names))
    return path


def write_png(path: Path, size: tuple[int, int] = (96, 64)) -> Path:
    from PIL import Image

    Image.new("RGB", size, (200, 80, 40)).save(path)
    return path


def material(folder: Path) -> dict[str, str]:
    """A model file, a two-image dataset, an output folder and a prompt file: what the configs point at."""
    write_safetensors(folder / "model.safetensors")
    sub = folder / "data" / "10_cat"
    sub.mkdir(parents=True)
    for i in range(2):
        write_png(sub / f"img{i}.png")
        (sub / f"img{i}.txt").write_text("a photo of a cat\n", encoding="utf-8")
    (folder / "out").mkdir()
    (folder / "sd").mkdir()
    (folder / "sd" / "sdxl_train_network.py").write_text("raise SystemExit(0)\n", encoding="utf-8")
    (folder / "prompts.txt").write_text("a cat --n blurry --w 1024 --h 1024 --d 1 --l 7 --s 20\n", encoding="utf-8")
    return {
        "pretrained_model_name_or_path": str(folder / "model.safetensors"),
        "train_data_dir": str(folder / "data"),
        "output_dir": str(folder / "out"),
        "sample_prompts": str(folder / "prompts.txt"),
        "logging_dir": str(folder / "logs"),
    }


def shipped() -> dict[str, dict[str, Any]]:
    return {p.stem: tomllib.loads(p.read_text(encoding="utf-8")) for p in sorted(CONFIGS.glob("*.toml"))}


def localised(data: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    """The shipped config with its placeholder paths pointing at the material."""
    out = json.loads(json.dumps(data))
    for table in out.values():
        if isinstance(table, dict):
            for key in list(table):
                if key in paths:
                    table[key] = paths[key]
    return out


# ---------------------------------------------------------------- a small TOML writer (hostile values kept)


def toml_value(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else toml_string(key)


def toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def dumps(data: dict[str, Any]) -> str:
    lines: list[str] = []
    top = {k: v for k, v in data.items() if not isinstance(v, dict) or isinstance(v, Raw)}
    for key, value in top.items():
        lines.append(f"{toml_key(key)} = {toml_value(value)}")
    for name, table in data.items():
        if name in top:
            continue
        lines.append(f"\n[{toml_key(name)}]")
        for key, value in table.items():
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def nested_array(depth: int) -> Raw:
    return Raw("[" * depth + "1" + "]" * depth)


def nested_table(depth: int) -> Raw:
    return Raw("{a = " * depth + "1" + "}" * depth)


def leaves(data: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for table, body in data.items():
        if isinstance(body, dict):
            for key, value in body.items():
                if isinstance(value, dict):
                    for sub, v in value.items():
                        yield table, f"{key}.{sub}", v
                else:
                    yield table, key, value
        else:
            yield "", table, body


def replaced(data: dict[str, Any], table: str, key: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(data))
    node = out[table] if table else out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return out


# ---------------------------------------------------------------- families of cases


def config_case(
    cls: int,
    name: str,
    data_fn: Callable[[dict[str, str]], dict[str, Any]],
    verb: str,
    expect: frozenset = REFUSE,
    sets: tuple[str, ...] = (),
    extra_files: Callable[[Path], None] | None = None,
    timeout: float = 20.0,
    needles: tuple[str, ...] = (),
    check=None,
    text_fn=None,
    forbid: tuple[str, ...] = (),
    extra_args: tuple[str, ...] | list[str] = (),
) -> Case:
    """A case that writes a config (from the material's paths) and runs one config verb on it."""

    def build(folder: Path) -> list[str]:
        paths = material(folder)
        if extra_files:
            extra_files(folder)
        cfg = folder / "run.toml"
        if text_fn is not None:
            cfg.write_text(text_fn(paths), encoding="utf-8")
        else:
            cfg.write_text(dumps(data_fn(paths)), encoding="utf-8")
        args = VERBS[verb](str(cfg))
        for s in sets:
            args += ["--set", s.replace("{root}", str(folder))]
        return args + list(extra_args)

    return Case(cls, f"{verb}:{name}", build, expect, needles=needles, forbid=forbid, timeout=timeout, check=check)


VERBS: dict[str, Callable[[str], list[str]]] = {
    "check": lambda c: ["check", c, "--no-preflight"],
    "preflight": lambda c: ["check", c],
    "dry-run": lambda c: ["run", c, "--dry-run"],
    "fit": lambda c: ["fit", c, "--gpu", "v100"],
    "resume": lambda c: ["run", c, "--dry-run", "--resume"],
    "preflight-sd": lambda c: ["check", c, "--sd-scripts", str(Path(c).parent / "sd")],
    "check-strict": lambda c: ["check", c, "--no-preflight", "--strict"],
    "dry-run-strict": lambda c: ["run", c, "--dry-run", "--strict"],
    "plan": lambda c: ["plan", c],
    "slurm": lambda c: ["slurm", c, "--nodes", "2", "--sd-scripts", str(Path(c).parent / "sd")],
}


def key_takes_list(key: str) -> bool:
    """Whether sd-scripts takes several values for this key (nargs), so a list is a fair value."""
    from loratrain.sdscripts import flags

    spec = flags.get(key.rsplit(".", 1)[-1])
    return spec is not None and spec.kind == "list"


def hostile_values(original: Any, key: str = "") -> Iterator[tuple[int, str, Any, frozenset]]:
    """(class, label, value, expected exit codes) for one leaf of a shipped config."""
    yield 1, "nested-array-600", nested_array(600), REFUSE
    yield 1, "nested-table-600", nested_table(600), REFUSE
    if not isinstance(original, list):
        lists = key_takes_list(key)
        yield 2, "empty-list", [], EITHER if lists else REFUSE
        yield 2, "list", [original], EITHER if lists else REFUSE
    yield 2, "table", {"a": 1}, REFUSE
    if isinstance(original, str):
        yield 3, "nul", original[:3] + "\x00" + original[3:], REFUSE
        yield 12, "newline", original + "\n$(rm -rf ~)", REFUSE
        yield 14, "escape", original + "\x1b[2J", EITHER
    if isinstance(original, list) and original and isinstance(original[0], str):
        yield 3, "nul-item", [original[0] + "\x00"], REFUSE
    if isinstance(original, float) or (isinstance(original, int) and not isinstance(original, bool)):
        yield 6, "inf", math.inf, REFUSE
        yield 6, "-inf", -math.inf, REFUSE
        yield 6, "nan", math.nan, REFUSE
        if isinstance(original, int):
            yield 5, "huge", 10**22, EITHER
            yield 5, "1e8", 10**8, EITHER


def mutator_cases(verbs: tuple[str, ...] = ("check", "dry-run", "plan")) -> Iterator[Case]:
    """Every leaf of every shipped config, replaced by each hostile value, under each config verb."""
    n = 0
    for stem, data in shipped().items():
        for table, key, original in leaves(data):
            for cls, label, value, expect in hostile_values(original, key):
                verb = verbs[n % len(verbs)]
                n += 1

                def data_fn(paths, data=data, table=table, key=key, value=value):
                    return replaced(localised(data, paths), table, key, value)

                if cls in (12, 14):
                    verb = "slurm" if cls == 12 else "dry-run"
                yield config_case(
                    cls,
                    f"{stem}:{table}.{key}={label}",
                    data_fn,
                    verb,
                    expect,
                    check=_pastes_back if cls == 14 else None,
                )


def base_config(paths: dict[str, str]) -> dict[str, Any]:
    return localised(shipped()["sdxl-lora-minimal"], paths)


def with_values(**tables: dict[str, Any]) -> Callable[[dict[str, str]], dict[str, Any]]:
    def data_fn(paths):
        data = base_config(paths)
        for table, values in tables.items():
            data.setdefault(table, {}).update(values)
        return data

    return data_fn


def huge_cases() -> Iterator[Case]:
    """Class 5: values validation accepts but whose schedules, buckets or images could be enumerated."""
    combos = {
        "max_bucket_reso=1e22": {"buckets": {"max_bucket_reso": 10**22}},
        "max_bucket_reso=1e9,steps=8": {"buckets": {"max_bucket_reso": 10**9, "bucket_reso_steps": 8}},
        "min_bucket_reso=64,max=1e6,steps=1": {
            "buckets": {"min_bucket_reso": 64, "max_bucket_reso": 10**6, "bucket_reso_steps": 1}
        },
        "resolution=1e8": {"dataset": {"resolution": "100000000,100000000"}},
        "save_every_n_steps=1,1e8": {
            "training": {"max_train_steps": 10**8, "max_train_epochs": None},
            "saving": {"save_every_n_steps": 1},
        },
        "sample_every_n_steps=1,1e8": {"training": {"max_train_steps": 10**8}, "sampling": {"sample_every_n_steps": 1}},
        "epochs=1e9,save_every_epoch": {"training": {"max_train_epochs": 10**9}, "saving": {"save_every_n_epochs": 1}},
        "epochs=1e9,sample_every_epoch": {
            "training": {"max_train_epochs": 10**9},
            "sampling": {"sample_every_n_epochs": 1},
        },
        "steps=1e22": {"training": {"max_train_steps": 10**22}},
        "epochs=1e22": {"training": {"max_train_epochs": 10**22}},
        "batch=1e9": {"training": {"train_batch_size": 10**9}},
        "accum=1e9": {"training": {"gradient_accumulation_steps": 10**9}},
        "seed=1e22": {"training": {"seed": 10**22}},
        "network_dim=1e22": {"network": {"network_dim": 10**22}},
        "save_last_n_steps=1e22": {"saving": {"save_every_n_steps": 1, "save_last_n_steps": 10**22}},
        "num_cycles=1e22": {"optimizer": {"lr_scheduler_num_cycles": 10**22}},
        "keep_tokens=1e22": {"dataset": {"keep_tokens": 10**22}},
        "max_token_length=1e9": {"dataset": {"max_token_length": 10**9}},
    }
    for label, tables in combos.items():

        def data_fn(paths, tables=tables):
            data = base_config(paths)
            for table, values in tables.items():
                node = data.setdefault(table, {})
                for k, v in values.items():
                    if v is None:
                        node.pop(k, None)
                    else:
                        node[k] = v
            return data

        for verb in ("check", "dry-run", "plan"):
            yield config_case(5, label, data_fn, verb, EITHER, timeout=15.0)

    def many_repeats(folder: Path) -> None:
        os.rename(folder / "data" / "10_cat", folder / "data" / "99999999999999999999_cat")

    yield config_case(5, "repeats=1e20", base_config, "plan", EITHER, extra_files=many_repeats, timeout=15.0)
    yield config_case(5, "repeats=1e20", base_config, "check", EITHER, extra_files=many_repeats, timeout=15.0)

    def huge_prompts(folder: Path) -> None:
        (folder / "prompts.txt").write_text("a cat\n" * 200_000, encoding="utf-8")

    data = with_values(
        sampling={"sample_prompts": "{p}", "sample_every_n_steps": 1}, training={"max_train_steps": 10**8}
    )

    def prompts_fn(paths):
        d = data(paths)
        d["sampling"]["sample_prompts"] = paths["sample_prompts"]
        return d

    yield config_case(5, "200k-prompts,every-step", prompts_fn, "plan", EITHER, extra_files=huge_prompts, timeout=30.0)


def set_cases() -> Iterator[Case]:
    """--set strings: nesting (1), wrong shapes (2), NUL (3), non-finite (6), bad quoting and paths (8)."""
    items = [
        (1, "network.network_dim=" + nested_array(800), REFUSE, ()),
        (1, "network.network_args=" + nested_table(800), REFUSE, ()),
        (1, "extra.x=" + nested_array(3000), REFUSE, ()),
        (2, "network.network_module=[]", REFUSE, ()),
        (2, "network.network_module={a=1}", REFUSE, ()),
        (2, "model=1", REFUSE, ()),
        (2, "optimizer.learning_rate=[1e-4]", REFUSE, ()),
        (3, "model.pretrained_model_name_or_path=/m\x00odel", REFUSE, ()),
        (3, "saving.output_name=a\x00b", REFUSE, ()),
        (3, "logging.logging_dir={root}/lo\x00gs", REFUSE, ()),
        (3, "extra.x\x00y=1", REFUSE, ()),
        (6, "optimizer.learning_rate=inf", REFUSE, ()),
        (6, "optimizer.learning_rate=nan", REFUSE, ()),
        (6, "optimizer.unet_lr=-inf", REFUSE, ()),
        (6, "network.network_alpha=inf", REFUSE, ()),
        (6, "noise.noise_offset=nan", REFUSE, ()),
        (6, "extra.min_snr_gamma=inf", REFUSE, ()),
        (6, "extra.caption_dropout_rate=nan", REFUSE, ()),
        (6, "optimizer.max_grad_norm=inf", REFUSE, ()),
        (6, 'optimizer.optimizer_args=["betas=inf"]', EITHER, ()),
        (8, 'model.pretrained_model_name_or_path="/m', REFUSE, ("--set",)),
        (8, "saving.output_name='abc", REFUSE, ("--set",)),
        (8, 'saving.output_name=abc"', REFUSE, ("--set",)),
        (8, "network.network_dim.x.y=1", REFUSE, ("--set",)),
        (8, "a.b.c.d=1", REFUSE, ("--set",)),
        (8, "network.network_args.algo.x=1", REFUSE, ("--set",)),
        (8, "=1", REFUSE, ("--set",)),
        (8, "noequals", REFUSE, ("--set",)),
    ]
    for i, (cls, text, expect, needles) in enumerate(items):
        verb = ("check", "dry-run", "plan")[i % 3]
        yield config_case(cls, f"--set {text[:40]!r}", base_config, verb, expect, sets=(text,), needles=needles)


def dataset_config_cases() -> Iterator[Case]:
    """dataset_config files: nesting (1), wrong shapes (2), NUL (3), non-finite rates (6), huge repeats (5)."""

    def subset(**kw):
        base = {"image_dir": "IMG", "num_repeats": 2}
        base.update(kw)
        return base

    variants = {
        1: [("nested", None)],
        2: [
            ("image_dir=[]", subset(image_dir=[])),
            ("num_repeats=[]", subset(num_repeats=[])),
            ("subsets=1", "subsets-scalar"),
            ("datasets=str", "datasets-str"),
            ("caption=table", subset(caption_extension={"a": 1})),
        ],
        3: [
            ("image_dir NUL", subset(image_dir="IMG\x00x")),
            ("caption NUL", subset(caption_extension=".t\x00xt")),
            ("class_tokens NUL", subset(class_tokens="c\x00at")),
        ],
        6: [
            ("caption_dropout_rate=nan", subset(caption_dropout_rate=math.nan)),
            ("caption_dropout_rate=inf", subset(caption_dropout_rate=math.inf)),
            ("caption_tag_dropout_rate=-inf", subset(caption_tag_dropout_rate=-math.inf)),
            ("loss_weight=inf", subset(loss_weight=math.inf)),
        ],
        5: [("num_repeats=1e22", subset(num_repeats=10**22)), ("num_repeats=1e9", subset(num_repeats=10**9))],
    }
    for cls, items in variants.items():
        for label, sub in items:

            def files(folder: Path, sub=sub, label=label) -> None:
                img = str(folder / "data" / "10_cat")
                if sub is None:
                    text = "[general]\nx = " + nested_array(900) + "\n"
                elif sub == "subsets-scalar":
                    text = "[[datasets]]\nsubsets = 1\n"
                elif sub == "datasets-str":
                    text = 'datasets = "x"\n'
                else:
                    body = {k: (v.replace("IMG", img) if isinstance(v, str) else v) for k, v in sub.items()}
                    text = (
                        "[[datasets]]\nresolution = 1024\n\n[[datasets.subsets]]\n"
                        + "\n".join(f"{k} = {toml_value(v)}" for k, v in body.items())
                        + "\n"
                    )
                (folder / "dataset.toml").write_text(text, encoding="utf-8")

            def data_fn(paths):
                data = base_config(paths)
                data["dataset"].pop("train_data_dir")
                data["dataset"]["dataset_config"] = str(Path(paths["output_dir"]).parent / "dataset.toml")
                return data

            expect = EITHER if cls == 5 else REFUSE
            for verb in ("preflight", "plan"):
                yield config_case(
                    cls, f"dataset_config {label}", data_fn, verb, expect, extra_files=files, timeout=_bound(verb)
                )


PROMPT_FILES: list[tuple[int, str, str, str, frozenset]] = [
    (1, "nested.toml", "prompts.toml", "[prompt]\n[[prompt.subset]]\nprompt = " + nested_array(900) + "\n", REFUSE),
    (1, "nested.json", "prompts.json", "[" * 5000 + "]" * 5000, REFUSE),
    (1, "nested-obj.json", "prompts.json", '{"prompt": ' * 3000 + '"x"' + "}" * 3000, REFUSE),
    (3, "nul.txt", "prompts.txt", "a c\x00at --w 1024\n", REFUSE),
    (3, "nul.toml", "prompts.toml", '[prompt]\n[[prompt.subset]]\nprompt = "a \\u0000cat"\n', REFUSE),
    (3, "nul.json", "prompts.json", '[{"prompt": "a \\u0000 cat"}]', REFUSE),
    (6, "l-nan.txt", "prompts.txt", "a cat --l nan\n", EITHER),  # sd-scripts' pattern skips it: a warning
    (6, "l-inf.txt", "prompts.txt", "a cat --l inf\n", EITHER),
    (6, "scale-inf.toml", "prompts.toml", '[prompt]\n[[prompt.subset]]\nprompt = "a cat"\nscale = inf\n', REFUSE),
    (6, "scale-nan.json", "prompts.json", '[{"prompt": "a cat", "scale": NaN}]', REFUSE),
    (6, "cfg-1e400.json", "prompts.json", '[{"prompt": "a cat", "scale": 1e400}]', REFUSE),
    (6, "width-inf.toml", "prompts.toml", '[prompt]\n[[prompt.subset]]\nprompt = "a cat"\nwidth = inf\n', REFUSE),
    (5, "steps-1e22.txt", "prompts.txt", "a cat --s 10000000000000000000000 --w 100000000 --h 100000000\n", EITHER),
    (
        5,
        "seed-1e30.toml",
        "prompts.toml",
        '[prompt]\n[[prompt.subset]]\nprompt = "a cat"\nseed = 1000000000000000000000000000\n',
        EITHER,
    ),
    (10, "prompt-number.toml", "prompts.toml", "[prompt]\n[[prompt.subset]]\nprompt = 5\n", REFUSE),
    (10, "prompt-bool.toml", "prompts.toml", "[prompt]\n[[prompt.subset]]\nprompt = true\n", REFUSE),
    (10, "prompt-null.json", "prompts.json", '[{"prompt": null}]', REFUSE),
    (10, "prompt-number.json", "prompts.json", '[{"prompt": 5}]', REFUSE),
    (10, "prompt-list.json", "prompts.json", '[{"prompt": ["a", "b"]}]', REFUSE),
    (
        10,
        "negative-list.toml",
        "prompts.toml",
        '[prompt]\n[[prompt.subset]]\nprompt = "a cat"\nnegative_prompt = ["x"]\n',
        REFUSE,
    ),
    (10, "negative-number.json", "prompts.json", '[{"prompt": "a cat", "negative_prompt": 3}]', REFUSE),
    (10, "width-string.json", "prompts.json", '[{"prompt": "a cat", "width": "big"}]', REFUSE),
    (10, "entry-number.json", "prompts.json", "[5]", REFUSE),
    (10, "top-number.json", "prompts.json", "5", REFUSE),
    (10, "prompt-table.toml", "prompts.toml", "[prompt]\n[[prompt.subset]]\nprompt = {a = 1}\n", REFUSE),
    (10, "scale-string.toml", "prompts.toml", '[prompt]\n[[prompt.subset]]\nprompt = "a cat"\nscale = "7"\n', REFUSE),
]


def prompt_cases() -> Iterator[Case]:
    for cls, label, name, text, expect in PROMPT_FILES:

        def files(folder: Path, name=name, text=text) -> None:
            (folder / name).write_text(text, encoding="utf-8")

        def build(folder: Path, files=files, name=name) -> list[str]:
            folder.mkdir(parents=True, exist_ok=True)
            files(folder)
            return ["prompts", str(folder / name)]

        yield Case(cls, f"prompts:{label}", build, expect)

        def data_fn(paths, name=name):
            data = base_config(paths)
            data.setdefault("sampling", {}).update(
                {"sample_prompts": str(Path(paths["output_dir"]).parent / name), "sample_every_n_epochs": 1}
            )
            return data

        yield config_case(cls, f"sample_prompts {label}", data_fn, "plan", expect, extra_files=files)


def _nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_nonfinite(v) for v in value.values())
    if isinstance(value, list):
        return any(_nonfinite(v) for v in value)
    return False


def _imported_is_finite(folder: Path, outcome: Outcome) -> str | None:
    out = folder / "imported.toml"
    if outcome.code != 0 or not out.exists():
        return None
    text = out.read_text(encoding="utf-8")
    if _nonfinite(tomllib.loads(text)):
        return "a non-finite number was carried into the written config"
    if "\x00" in text or "\\u0000" in text:
        return "a NUL was carried into the written config"
    return None


CMD = (
    "accelerate launch sdxl_train_network.py --pretrained_model_name_or_path=/m.safetensors "
    "--train_data_dir=/d --output_dir=/o --network_module=networks.lora --resolution=1024 {}"
)
SD_TOML = (
    'pretrained_model_name_or_path = "/m.safetensors"\ntrain_data_dir = "/d"\noutput_dir = "/o"\n'
    'network_module = "networks.lora"\n{}\n'
)
GUI = (
    '{{"pretrained_model_name_or_path": "/m.safetensors", "train_data_dir": "/d", "output_dir": "/o", '
    '"LoRA_type": "Standard", "network_dim": 8, {}}}'
)

IMPORTS: list[tuple[int, str, str, str]] = [
    (1, "cmd-nested", "cmd.sh", CMD.format("--network_args " + "[" * 3000)),
    (1, "toml-nested", "sd.toml", SD_TOML.format("x = " + nested_array(900))),
    (1, "toml-nested-table", "sd.toml", SD_TOML.format("x = " + nested_table(900))),
    (1, "gui-nested", "gui.json", GUI.format('"x": ' + "[" * 5000 + "]" * 5000)),
    (1, "gui-nested-obj", "gui.json", GUI.format('"x": ' + '{"a": ' * 3000 + "1" + "}" * 3000)),
    (2, "toml-module-list", "sd.toml", SD_TOML.format("network_dim = []")),
    (2, "toml-lr-table", "sd.toml", SD_TOML.format("learning_rate = {a = 1}")),
    (3, "cmd-nul", "cmd.sh", CMD.format("--output_name a\x00b")),
    (3, "toml-nul", "sd.toml", SD_TOML.format('output_name = "a\\u0000b"')),
    (3, "gui-nul", "gui.json", GUI.format('"output_name": "a\\u0000b"')),
    (6, "cmd-lr-inf", "cmd.sh", CMD.format("--learning_rate inf")),
    (6, "cmd-lr-nan", "cmd.sh", CMD.format("--learning_rate=nan")),
    (6, "cmd-alpha-inf", "cmd.sh", CMD.format("--network_alpha inf")),
    (6, "cmd-noise-nan", "cmd.sh", CMD.format("--noise_offset nan")),
    (6, "toml-lr-inf", "sd.toml", SD_TOML.format("learning_rate = inf")),
    (6, "toml-alpha-nan", "sd.toml", SD_TOML.format("network_alpha = nan")),
    (6, "gui-lr-Infinity", "gui.json", GUI.format('"learning_rate": Infinity')),
    (6, "gui-lr-NaN", "gui.json", GUI.format('"learning_rate": NaN')),
    (6, "gui-lr-1e400", "gui.json", GUI.format('"learning_rate": 1e400')),
    (6, "gui-alpha-NaN", "gui.json", GUI.format('"network_alpha": NaN')),
    (6, "gui-dim-Infinity", "gui.json", GUI.format('"network_dim": Infinity')),
    (6, "gui-epoch-1e400", "gui.json", GUI.format('"epoch": 1e400')),
    (6, "gui-noise-NaN", "gui.json", GUI.format('"noise_offset": NaN')),
    (6, "gui-lr-string-inf", "gui.json", GUI.format('"learning_rate": "inf"')),
    (6, "gui-unet-lr-nan-string", "gui.json", GUI.format('"unet_lr": "nan"')),
]


def import_cases() -> Iterator[Case]:
    for cls, label, name, text in IMPORTS:

        def build(folder: Path, name=name, text=text) -> list[str]:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
            return ["import", str(folder / name), "-o", str(folder / "imported.toml")]

        case = Case(cls, f"import:{label}", build, EITHER, check=_imported_is_finite)
        case.writes = True
        yield case


def dataset_tree_cases() -> Iterator[Case]:
    """Class 4: symlink loops, non-UTF-8 names, dangling image links (unreadable ones: see test_unreadable)."""

    def loop_dir(folder: Path) -> None:
        os.symlink("..", folder / "data" / "10_cat" / "loop")
        os.symlink(folder / "data", folder / "data" / "5_again")

    def loop_file(folder: Path) -> None:
        os.symlink("b.png", folder / "data" / "10_cat" / "a.png")
        os.symlink("a.png", folder / "data" / "10_cat" / "b.png")

    def non_utf8_dir(folder: Path) -> None:
        sub = os.path.join(os.fsencode(folder / "data"), b"3_caf\xe9")
        os.mkdir(sub)
        write_png(Path(os.fsdecode(os.path.join(sub, b"img.png"))))

    def non_utf8_file(folder: Path) -> None:
        name = os.path.join(os.fsencode(folder / "data" / "10_cat"), b"caf\xe9.png")
        write_png(Path(os.fsdecode(name)))

    def dangling(folder: Path) -> None:
        os.symlink(folder / "nowhere.png", folder / "data" / "10_cat" / "img9.png")

    def fifo(folder: Path) -> None:
        os.mkfifo(folder / "data" / "10_cat" / "img8.png")

    def bad_caption(folder: Path) -> None:
        (folder / "data" / "10_cat" / "img0.txt").write_bytes(b"caf\xe9 \x00\xff")

    def empty_png(folder: Path) -> None:
        (folder / "data" / "10_cat" / "img7.png").write_bytes(b"")

    def huge_header_png(folder: Path) -> None:
        (folder / "data" / "10_cat" / "img6.png").write_bytes(
            b"\x89PNG\r\n\x1a\n"
            + struct.pack(">I", 13)
            + b"IHDR"
            + struct.pack(">II", 2**31 - 1, 2**31 - 1)
            + b"\x08\x02\x00\x00\x00"
            + b"\x00" * 4
        )

    families = [
        ("symlink-loop-dir", loop_dir, EITHER, ()),
        ("symlink-loop-file", loop_file, REFUSE, ("a.png",)),
        ("non-utf8-dir", non_utf8_dir, EITHER, ()),
        ("non-utf8-file", non_utf8_file, EITHER, ()),
        ("dangling-image", dangling, REFUSE, ("img9.png",)),
        ("fifo-image", fifo, REFUSE, ("img8.png",)),
        ("non-utf8-caption", bad_caption, EITHER, ()),
        ("empty-png", empty_png, REFUSE, ("img7.png",)),
        ("huge-png-header", huge_header_png, EITHER, ()),
    ]
    for label, files, expect, needles in families:
        for verb in ("plan", "preflight"):
            yield config_case(
                4,
                label,
                base_config,
                verb,
                expect if verb == "plan" else REFUSE,
                extra_files=files,
                needles=needles if verb == "plan" else (),
                timeout=_bound(verb),
            )


def unreadable_cases() -> Iterator[Case]:
    """Class 4: files and folders the user cannot read (run as `nobody` when the tests run as root)."""

    def lock(*parts: str) -> Callable[[Path], None]:
        def files(folder: Path) -> None:
            os.chmod(folder.joinpath(*parts), 0)

        return files

    def dataset_config(folder: Path) -> None:
        (folder / "dataset.toml").write_text(
            f'[[datasets]]\nresolution = 1024\n[[datasets.subsets]]\nimage_dir = "{folder / "data" / "10_cat"}"\n',
            encoding="utf-8",
        )
        os.chmod(folder / "dataset.toml", 0)

    def with_dataset_config(paths):
        data = base_config(paths)
        data["dataset"].pop("train_data_dir")
        data["dataset"]["dataset_config"] = str(Path(paths["output_dir"]).parent / "dataset.toml")
        return data

    def with_prompts(paths):
        data = base_config(paths)
        data.setdefault("sampling", {}).update({"sample_prompts": paths["sample_prompts"], "sample_every_n_epochs": 1})
        return data

    families = [
        ("image folder", base_config, lock("data", "10_cat"), ("10_cat",)),
        ("dataset folder", base_config, lock("data"), ("data",)),
        ("image file", base_config, lock("data", "10_cat", "img0.png"), ("img0.png",)),
        ("caption file", base_config, lock("data", "10_cat", "img1.txt"), ("img1.txt",)),
        ("prompt file", with_prompts, lock("prompts.txt"), ("prompts.txt",)),
        ("dataset_config", with_dataset_config, dataset_config, ("dataset.toml",)),
        ("model file", base_config, lock("model.safetensors"), ("model.safetensors",)),
    ]
    # Only verbs that run no other program: as `nobody` the training interpreter (under /root here) cannot be
    # started, so `check` with preflight is left to the non-root tests of the preflight itself.
    for label, data_fn, files, needles in families:
        for verb in ("plan",):
            if label == "model file":
                continue  # plan does not read the model
            case = config_case(4, f"unreadable {label}", data_fn, verb, REFUSE, extra_files=files, needles=needles)
            case.unprivileged = True
            yield case

    def locked_config(folder: Path) -> list[str]:
        material(folder)
        (folder / "run.toml").write_text(dumps(base_config(material_paths(folder))), encoding="utf-8")
        os.chmod(folder / "run.toml", 0)
        return ["check", str(folder / "run.toml"), "--no-preflight"]

    yield Case(4, "check:unreadable config", locked_config, REFUSE, needles=("run.toml",), unprivileged=True)

    def locked_prompts(folder: Path) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "p.txt").write_text("a cat\n", encoding="utf-8")
        os.chmod(folder / "p.txt", 0)
        return ["prompts", str(folder / "p.txt")]

    yield Case(4, "prompts:unreadable prompt file", locked_prompts, REFUSE, needles=("p.txt",), unprivileged=True)

    def locked_import(folder: Path) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "gui.json").write_text(GUI.format('"epoch": 1'), encoding="utf-8")
        os.chmod(folder / "gui.json", 0)
        return ["import", str(folder / "gui.json")]

    yield Case(4, "import:unreadable source", locked_import, REFUSE, needles=("gui.json",), unprivileged=True)


def material_paths(folder: Path) -> dict[str, str]:
    return {
        "pretrained_model_name_or_path": str(folder / "model.safetensors"),
        "train_data_dir": str(folder / "data"),
        "output_dir": str(folder / "out"),
        "sample_prompts": str(folder / "prompts.txt"),
        "logging_dir": str(folder / "logs"),
    }


def shrink_cases() -> Iterator[Case]:
    """Class 7: LoRA files and base checkpoints with hostile tensors; outputs nobody may write."""
    import torch

    def layer(out=16, inp=12, r=4, dtype=torch.float32, alpha=2.0):
        gen = torch.Generator().manual_seed(0)
        return {
            "lora_down.weight": torch.randn(r, inp, generator=gen).to(dtype),
            "lora_up.weight": torch.randn(out, r, generator=gen).to(dtype),
            "alpha": torch.tensor(alpha),
        }

    name = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"

    def tensors(**change):
        parts = layer()
        parts.update(change)
        return {f"{name}.{k}": v for k, v in parts.items() if v is not None}

    nan = torch.full((4, 12), float("nan"))
    variants = {
        "nan-down": tensors(**{"lora_down.weight": nan}),
        "inf-up": tensors(**{"lora_up.weight": torch.full((16, 4), float("inf"))}),
        "alpha-nan": tensors(alpha=torch.tensor(float("nan"))),
        "alpha-inf": tensors(alpha=torch.tensor(float("inf"))),
        "alpha-size3": tensors(alpha=torch.ones(3)),
        "alpha-2d": tensors(alpha=torch.ones(2, 2)),
        "down-0d": tensors(**{"lora_down.weight": torch.tensor(1.0)}),
        "up-0d": tensors(**{"lora_up.weight": torch.tensor(1.0)}),
        "rank-0": tensors(**{"lora_down.weight": torch.zeros(0, 12), "lora_up.weight": torch.zeros(16, 0)}),
        "rank-mismatch": tensors(**{"lora_down.weight": torch.randn(4, 12), "lora_up.weight": torch.randn(16, 3)}),
        "int-tensors": {f"{name}.{k}": (v * 10).to(torch.int32) for k, v in layer().items()},
        "bool-tensors": {f"{name}.{k}": v > 0 for k, v in layer().items()},
        "int8-tensors": {f"{name}.{k}": (v * 10).to(torch.int8) for k, v in layer().items()},
        "5d-down": tensors(**{"lora_down.weight": torch.randn(4, 12, 1, 1, 1)}),
        "empty-file": {},
    }

    def build_with(tens, extra_args=(), base=None):
        def build(folder: Path) -> list[str]:
            from safetensors.torch import save_file

            folder.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in tens.items()}, str(folder / "lora.safetensors"))
            args = ["shrink", str(folder / "lora.safetensors"), "--rank", "2", "-o", str(folder / "small.safetensors")]
            if base is not None:
                save_file(base, str(folder / "base.safetensors"))
                args = [
                    "shrink",
                    str(folder / "lora.safetensors"),
                    "--base",
                    str(folder / "base.safetensors"),
                    "-r",
                    "fro_ckpt=1,thr=-3.55",
                    "-o",
                    str(folder / "small.safetensors"),
                ]
            return args + list(extra_args)

        return build

    for label, tens in variants.items():
        yield Case(7, f"shrink:{label}", build_with(tens), REFUSE, timeout=60.0)
    base_prefix = "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight"
    for label, base in {
        "base-wrong-shape": {base_prefix: torch.randn(5, 7)},
        "base-3d": {base_prefix: torch.randn(16, 12, 2)},
        "base-0d": {base_prefix: torch.tensor(1.0)},
        "base-int": {base_prefix: torch.ones(16, 12, dtype=torch.int32)},
        "base-nan": {base_prefix: torch.full((16, 12), float("nan"))},
    }.items():
        yield Case(7, f"shrink:{label}", build_with(tensors(), base=base), REFUSE, timeout=60.0)

    def plot_dir(folder: Path) -> list[str]:
        args = build_with(tensors())(folder)
        (folder / "plots").mkdir()
        return args + ["--plot", str(folder / "plots"), "--force"]

    yield Case(7, "shrink:--plot DIR --force", plot_dir, REFUSE, timeout=60.0)

    def out_is_dir(folder: Path) -> list[str]:
        args = build_with(tensors())(folder)
        (folder / "small.safetensors").mkdir()
        return args + ["--force"]

    folder_out = Case(7, "shrink:-o is a folder --force", out_is_dir, OK, timeout=60.0)  # -o DIR writes into it
    folder_out.writes = True
    yield folder_out

    def out_nul(folder: Path) -> list[str]:
        args = build_with(tensors())(folder)
        return args[:-1] + [str(folder / "sm\x00all.safetensors")]

    yield Case(3, "shrink:-o with NUL", out_nul, REFUSE, timeout=60.0)

    def read_only_out(folder: Path) -> list[str]:
        args = build_with(tensors())(folder)
        os.chmod(folder / "lora.safetensors", 0o644)  # safetensors writes 0600: only the folder is to be locked
        (folder / "ro").mkdir()
        os.chmod(folder / "ro", 0o555)
        return args[:-1] + [str(folder / "ro" / "small.safetensors")]

    yield Case(7, "shrink:-o into a read-only folder", read_only_out, REFUSE, timeout=60.0, unprivileged=True)


def slurm_cases() -> Iterator[Case]:
    """Classes 8 and 12: --port out of range; control characters in anything written into the script."""
    options = [
        (8, ["--port", "99999"], ("--port",)),
        (8, ["--port", "-1"], ("--port",)),
        (8, ["--port", "0"], ("--port",)),
        (12, ["--sbatch", "--account=a\nrm -rf ~"], ("--sbatch",)),
        (12, ["--partition", "gpu\nrm -rf ~"], ("--partition",)),
        (12, ["--time", "12:00:00\rdate"], ("--time",)),
        (12, ["--job-name", "job\nid"], ("--job-name",)),
        (12, ["--job-name", "job\x1b[2J"], ("--job-name",)),
        (12, ["--sd-scripts", "/sd\nrm"], ("--sd-scripts",)),
        (12, ["--partition", "a\x00b"], ("--partition",)),
        (12, ["--job-name", "a\tb"], ("--job-name",)),
        (8, ["--set", "accelerate.main_process_port=99999"], ("main_process_port",)),
    ]
    for cls, opts, needles in options:

        def build(folder: Path, opts=opts) -> list[str]:
            paths = material(folder)
            (folder / "run.toml").write_text(dumps(base_config(paths)), encoding="utf-8")
            return ["slurm", str(folder / "run.toml"), "--nodes", "2", "--sd-scripts", str(folder / "sd")] + opts

        yield Case(cls, f"slurm:{opts[0]}={opts[1][:20]!r}", build, REFUSE, needles=needles)


def misc_cases() -> Iterator[Case]:
    """Classes 8 (TOML line), 9 (network_args.kind), 14 (dry-run pastes back), 15 (overwrite guard), 16."""

    def unterminated(paths):
        return dumps(base_config(paths)) + '\n[logging]\nlog_prefix = "abc\n'

    def unterminated_ml(paths):
        return dumps(base_config(paths)) + '\n[logging]\nlog_prefix = """abc\n\n'

    for label, fn in (("unterminated string", unterminated), ("unterminated multi-line", unterminated_ml)):
        yield config_case(8, label, None, "check", REFUSE, text_fn=fn, check=_names_a_line)

    def kind_other(paths):
        data = base_config(paths)
        data["network"]["network_module"] = "my_networks.custom"
        data["network"]["network_args"] = {"kind": "fancy", "rank_mode": "x"}
        return data

    yield config_case(9, "kind of an unchecked module", kind_other, "dry-run", OK, needles=("kind=fancy",))
    for module in ("networks.lora", "lycoris.kohya"):

        def kind_checked(paths, module=module):
            data = base_config(paths)
            data["network"]["network_module"] = module
            data["network"]["network_args"] = {"kind": "fancy"}
            return data

        yield config_case(9, f"kind of {module}", kind_checked, "check", REFUSE, needles=("kind",))
        yield config_case(
            9,
            f"kind of {module} via --set",
            base_config,
            "check",
            REFUSE,
            sets=(f"network.network_module={module}", "network.network_args.kind=lycoris"),
        )

    for label, value in (
        ("ESC", "my\x1b[31mlora"),
        ("BEL", "my\x07lora"),
        ("DEL", "my\x7flora"),
        ("newline", "my\nlora"),
        ("tab", "my\tlora"),
        ("CR", "my\rlora"),
        ("C1", "my\x9blora"),
    ):

        def data_fn(paths, value=value):
            data = base_config(paths)
            data["saving"]["output_name"] = value
            return data

        yield config_case(14, f"dry-run output_name with {label}", data_fn, "dry-run", EITHER, check=_pastes_back)

    def existing_output(folder: Path) -> None:
        (folder / "out" / "my-sdxl-lora.safetensors").write_bytes(b"trained weights")

    def fake_python(paths):
        data = base_config(paths)
        data["python"] = "/bin/false"
        return data

    yield Case(
        15,
        "run --no-preflight over an existing output",
        _run_build(existing_output, fake_python, ["--no-preflight"]),
        REFUSE,
        needles=("--force",),
    )

    def nul_logging(paths):
        data = fake_python(paths)
        data["logging"] = {"logging_dir": paths["logging_dir"] + "\x00x"}
        return data

    yield Case(
        3,
        "run --no-preflight with a NUL logging_dir",
        _run_build(existing_output, nul_logging, ["--no-preflight", "--force"]),
        REFUSE,
    )

    def long_name(paths):
        data = fake_python(paths)
        data["saving"]["output_name"] = "x" * 300
        return data

    yield Case(
        16,
        "run --no-preflight with a 300-character output_name",
        _run_build(lambda f: None, long_name, ["--no-preflight"]),
        REFUSE,
    )

    def no_interpreter(paths):
        data = base_config(paths)
        data["python"] = paths["output_dir"] + "/no-such-python"
        data["model"]["pretrained_model_name_or_path"] = paths["output_dir"] + "/no-such-model.safetensors"
        return data

    yield config_case(
        16,
        "check lists every problem when the interpreter is missing",
        no_interpreter,
        "preflight",
        REFUSE,
        needles=("no-such-python", "no-such-model"),
        sets=("sd_scripts={root}/sd",),
    )
    yield Case(16, "--version", lambda folder: ["--version"], OK, check=_prints_version)
    yield config_case(
        16,
        "mistyped lycoris module",
        base_config,
        "check",
        REFUSE,
        sets=("network.network_module=lycoris.kohyaa",),
        forbid=("install lycoris_lora",),
    )
    yield Case(16, "explain full_bf16", lambda folder: ["explain", "full_bf16"], OK, needles=("U-Net",))


def other_verb_cases() -> Iterator[Case]:
    """explain, init and import with NUL bytes, escapes, huge names and targets they must not overwrite."""
    for label, name in (
        ("NUL", "network_\x00dim"),
        ("ESC", "network_\x1b[2Jdim"),
        ("long", "n" * 100_000),
        ("deep", "a." * 5000),
        ("empty", ""),
    ):
        yield Case(3 if label == "NUL" else 2, f"explain:{label} name", lambda f, name=name: ["explain", name], REFUSE)

    def existing(folder: Path) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "mine.toml").write_text("# my own config\n", encoding="utf-8")
        return ["init", "sdxl-lora-minimal", "-o", str(folder / "mine.toml")]

    yield Case(15, "init -o over an existing file", existing, REFUSE, needles=("--force",))
    yield Case(3, "init NUL name", lambda f: ["init", "sdxl-lora\x00-minimal", "-o", str(f / "new.toml")], REFUSE)
    yield Case(3, "init -o with NUL", lambda f: ["init", "sdxl-lora-minimal", "-o", str(f / "n\x00ew.toml")], REFUSE)
    yield Case(
        4,
        "init -o into a missing folder",
        lambda f: ["init", "sdxl-lora-minimal", "-o", str(f / "no" / "such" / "new.toml")],
        REFUSE,
    )

    def import_existing(folder: Path) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "gui.json").write_text(GUI.format('"epoch": 1'), encoding="utf-8")
        (folder / "mine.toml").write_text("# my own config\n", encoding="utf-8")
        return ["import", str(folder / "gui.json"), "-o", str(folder / "mine.toml")]

    yield Case(15, "import -o over an existing file", import_existing, REFUSE, needles=("--force",))


def _run_build(files, data_fn, opts):
    def build(folder: Path) -> list[str]:
        paths = material(folder)
        files(folder)
        (folder / "run.toml").write_text(dumps(data_fn(paths)), encoding="utf-8")
        return ["run", str(folder / "run.toml"), "--sd-scripts", str(folder / "sd")] + opts

    return build


def _names_a_line(folder: Path, outcome: Outcome) -> str | None:
    import re

    return None if re.search(r"run\.toml:\d+", outcome.output) else "the TOML error names no line"


def _prints_version(folder: Path, outcome: Outcome) -> str | None:
    from loratrain import __version__

    return None if __version__ in outcome.output else "no version printed"


def _pastes_back(folder: Path, outcome: Outcome) -> str | None:
    """The printed --dry-run command, pasted into bash, gives exactly the argv of --dry-run --json."""
    import subprocess

    from typer.testing import CliRunner

    if outcome.code != 0:
        return None
    result = CliRunner().invoke(
        _app(), ["run", str(folder / "run.toml"), "--dry-run", "--json"], env={"COLUMNS": COLUMNS}
    )
    try:
        argv = json.loads(result.stdout)["argv"]
    except (ValueError, KeyError):
        return "--dry-run --json printed no argv"
    printed = result_stdout_of_dry_run(folder)
    proc = subprocess.run(["bash", "-c", 'printf "%s\\0" ' + printed], capture_output=True, timeout=10)
    got = proc.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1]
    if got == argv:
        return None
    diff = [(a, b) for a, b in zip(got, argv) if a != b] or [(len(got), len(argv))]
    return f"pasted back differs from the launched argv: {diff[0]!r}"


def result_stdout_of_dry_run(folder: Path) -> str:
    from typer.testing import CliRunner

    result = CliRunner().invoke(_app(), ["run", str(folder / "run.toml"), "--dry-run"], env={"COLUMNS": COLUMNS})
    return result.stdout.strip()


ACC_CMD = (
    "accelerate launch {} sdxl_train_network.py --pretrained_model_name_or_path=/m.safetensors "
    "--train_data_dir=/d --output_dir=/o --network_module=networks.lora --resolution=1024"
)


def consolidated_path_cases() -> Iterator[Case]:
    for case in _consolidated_path_cases():
        case.always = True
        yield case


def _consolidated_path_cases() -> Iterator[Case]:
    """The paths issue 9's consolidation added or moved, each in every CI sample: the [accelerate] table read
    through one option table (gpu_id_list, total_processes) from the file and --set, --strict failing warnings
    in one place (fail_if_strict), key lines read once (LoadedConfig.lines, a dataset_config's lines), and the
    accelerate launch options of an imported command."""
    accelerate = [
        (2, "gpu_ids=0,x", {"gpu_ids": "0,x"}, REFUSE),
        (2, "gpu_ids=0,,1", {"gpu_ids": "0,,1"}, REFUSE),
        (2, "gpu_ids={}", {"gpu_ids": {"a": 0}}, REFUSE),
        (2, "gpu_ids=[[0]]", {"gpu_ids": [[0]]}, REFUSE),
        (2, "num_processes=[]", {"num_processes": []}, REFUSE),
        (2, "mixed_precision={}", {"mixed_precision": {"a": 1}}, REFUSE),
        (3, "gpu_ids NUL", {"gpu_ids": "0,\x00"}, REFUSE),
        (3, "main_process_ip NUL", {"main_process_ip": "10.0.0.\x001"}, REFUSE),
        (5, "gpu_ids=1e20", {"gpu_ids": "99999999999999999999"}, EITHER),
        (5, "num_processes=1e22", {"num_processes": 10**22}, EITHER),
        (5, "num_machines=1e22", {"num_machines": 10**22}, EITHER),
        (5, "auto,num_machines=1e22", {"num_processes": "auto", "num_machines": 10**22}, EITHER),
        (6, "num_processes=inf", {"num_processes": math.inf}, REFUSE),
        (6, "num_machines=nan", {"num_machines": math.nan}, REFUSE),
        (8, "main_process_port=99999", {"main_process_port": 99999}, REFUSE),
    ]
    verbs = ("check", "dry-run", "preflight", "plan")
    for i, (cls, label, values, expect) in enumerate(accelerate):
        for verb in (verbs[i % 4], verbs[(i + 1) % 4]):  # two verbs each, every verb in turn
            yield config_case(
                cls,
                f"[accelerate] {label}",
                with_values(accelerate=values),
                verb,
                expect,
                needles=("accelerate",) if expect == REFUSE else (),
            )
    strict = [
        (3, "NUL", with_values(saving={"output_name": "a\x00b"}), REFUSE),
        (6, "inf", with_values(optimizer={"learning_rate": math.inf}), REFUSE),
        (2, "module=[]", with_values(network={"network_module": []}), REFUSE),
        (
            5,
            "save every step of 1e8",
            with_values(training={"max_train_steps": 10**8}, saving={"save_every_n_steps": 1}),
            EITHER,
        ),
    ]
    for cls, label, data_fn, expect in strict:
        for verb in ("check-strict", "dry-run-strict"):
            yield config_case(cls, f"--strict {label}", data_fn, verb, expect)

    def dataset_lines(text: str) -> Callable[[Path], None]:
        def files(folder: Path) -> None:
            img = str(folder / "data" / "10_cat")
            (folder / "dataset.toml").write_text(text.replace("IMG", img), encoding="utf-8")

        return files

    def with_dataset_config(paths):
        data = base_config(paths)
        data["dataset"].pop("train_data_dir")
        data["dataset"]["dataset_config"] = str(Path(paths["output_dir"]).parent / "dataset.toml")
        return data

    first = '[[datasets]]\nresolution = 1024\n[[datasets.subsets]]\nimage_dir = "IMG"\n'
    dataset_texts = [
        (3, "NUL key", first + '"num\\u0000repeats" = 2\n', REFUSE),
        (
            2,
            "wrong type, second subset",
            first + '[[datasets.subsets]]\nimage_dir = "IMG"\nnum_repeats = "x"\n',
            REFUSE,
        ),
        (1, "nested, second dataset", first + "[[datasets]]\nx = " + nested_array(900) + "\n", REFUSE),
        (8, "unterminated string", first + 'caption_extension = ".txt\n', REFUSE),
        (8, "duplicate key", first + "num_repeats = 2\nnum_repeats = 3\n", REFUSE),
        (8, "escapes in key", first + '"\\u001b[2J" = 1\n', REFUSE),
    ]
    for cls, label, text, expect in dataset_texts:
        for verb in ("preflight-sd", "plan"):
            yield config_case(
                cls,
                f"dataset_config lines: {label}",
                with_dataset_config,
                verb,
                expect,
                extra_files=dataset_lines(text),
                needles=("dataset.toml",),
            )
    imports = [
        (6, "num_processes inf", "--num_processes inf"),
        (6, "num_machines nan", "--num_machines=nan"),
        (5, "num_processes 1e20", "--num_processes 99999999999999999999"),
        (3, "gpu_ids NUL", "--gpu_ids 0,\x001"),
        (2, "gpu_ids words", "--gpu_ids zero,one"),
        (2, "mixed_precision list", "--mixed_precision [bf16]"),
        (8, "port 99999", "--main_process_port 99999"),
        (8, "unknown launch option", "--num_procezzes 2"),
    ]
    for cls, label, opts in imports:

        def build(folder: Path, opts=opts) -> list[str]:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "cmd.sh").write_text(ACC_CMD.format(opts), encoding="utf-8")
            return ["import", str(folder / "cmd.sh"), "-o", str(folder / "imported.toml")]

        case = Case(cls, f"import:accelerate {label}", build, EITHER, check=_imported_is_finite)
        case.writes = True
        yield case


def all_cases() -> list[Case]:
    families = [
        mutator_cases(),
        huge_cases(),
        set_cases(),
        dataset_config_cases(),
        prompt_cases(),
        import_cases(),
        dataset_tree_cases(),
        unreadable_cases(),
        shrink_cases(),
        slurm_cases(),
        misc_cases(),
        other_verb_cases(),
        consolidated_path_cases(),
        (replace(case, always=True) for case in report_cases()),
        (replace(case, always=True) for case in later_verb_cases()),
        (replace(case, always=True) for case in sweep_cases()),
    ]
    cases = [case for family in families for case in family]
    for case in cases:
        if case.name in FOUND_AFTER_MERGES:
            case.always = True
    return cases


# Cases of the strided families that failed once code from other branches arrived: in every CI sample.
FOUND_AFTER_MERGES = {
    "plan:sdxl-lokr:training.max_train_epochs=huge",  # len() of a range of 1e22 epochs (plan/steps)
    "import:gui-epoch-1e400",  # int(inf) in the GUI importer's on-load conversion
}


def survey(cases: list[Case], workdir: Path, verbose: bool = False) -> dict[int, dict[str, Any]]:
    """Run every case in its own folder under `workdir`; per class: cases run and the failures found."""
    import shutil

    stats: dict[int, dict[str, Any]] = {}
    for i, case in enumerate(cases):
        folder = workdir / f"c{i}"
        outcome = run_case(case, folder)
        found = outcome.failures(case)
        entry = stats.setdefault(case.cls, {"cases": 0, "failed": [], "seconds": 0.0})
        entry["cases"] += 1
        entry["seconds"] += outcome.seconds
        if found:
            entry["failed"].append((case.name, found, outcome.output[-400:]))
            if verbose:
                print(f"FAIL class {case.cls} {case.name}: {found}", flush=True)
        _unlock(folder)
        shutil.rmtree(folder, ignore_errors=True)
    return stats


def _unlock(folder: Path) -> None:
    for dirpath, dirnames, _ in os.walk(folder):
        for name in dirnames:
            try:
                os.chmod(os.path.join(dirpath, name), 0o755)
            except OSError:
                pass


def failure_kind(found: list[str]) -> str:
    text = " ".join(found)
    for kind in ("hang", "traceback", "files touched", "exit"):
        if kind in text:
            return kind
    return "other"


# ---------------------------------------------------------------- report: a run folder written by others


def _report_run(folder: Path) -> Path:
    """A small finished run (record, TensorBoard events, one sample, two saves) by tests/helpers.make_run."""
    from helpers import make_run

    return make_run(folder / "r", total_steps=100, save_every=50, sample_every=100, prompts=1, image_size=16)


def _edit_record(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Path], Path]:
    def mutate(folder: Path) -> Path:
        rec_folder = _report_run(folder)
        path = rec_folder / "record.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        text = edit(data)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text if isinstance(text, str) else json.dumps(data), encoding="utf-8")
        return rec_folder

    return mutate


def _set(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data.update(values)


def _damage_files(suffix: str, content: bytes) -> Callable[[Path], Path]:
    def mutate(folder: Path) -> Path:
        rec_folder = _report_run(folder)
        root = folder / "r"
        for path in sorted(root.rglob("*")):
            if path.is_file() and (path.suffix == suffix or (suffix == "events" and "tfevents" in path.name)):
                path.write_bytes(content)
        return rec_folder

    return mutate


def _nan_saves(folder: Path) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    rec_folder = _report_run(folder)
    for path in sorted((folder / "r" / "out").glob("*.safetensors")):
        save_file(
            {
                "lora_unet_x.lora_up.weight": np.full((4, 2), np.nan, np.float16),
                "lora_unet_x.lora_down.weight": np.full((2, 4), np.inf, np.float16),
                "lora_unet_x.alpha": np.array(np.nan, np.float16),
            },
            str(path),
        )
    return rec_folder


REPORT_MUTATIONS: list[tuple[int, str, Callable[[Path], Path], frozenset]] = [
    (1, "record nested 100000 deep", _edit_record(lambda d: "[" * 100_000 + "]" * 100_000), REFUSE),
    (
        1,
        "record argv nested",
        _edit_record(lambda d: json.dumps({**d, "argv": "@"}).replace('"@"', "[" * 50_000 + "]" * 50_000)),
        EITHER,
    ),
    (2, "record is a list", _edit_record(lambda d: "[1, 2]"), REFUSE),
    (2, "argv a number", _edit_record(_set(argv=5)), EITHER),
    (2, "argv items tables", _edit_record(_set(argv=[{"a": 1}, ["--output_dir=x"]])), EITHER),
    (2, "cwd a list", _edit_record(_set(cwd=["a"])), EITHER),
    (2, "started a number", _edit_record(_set(started=5, finished=[1])), EITHER),
    (2, "status a table", _edit_record(_set(status={"a": 1}, exit_code="x")), EITHER),
    (2, "log a list", _edit_record(_set(log=["train.log"])), EITHER),
    (3, "argv output_dir NUL", _edit_record(lambda d: d["argv"].append("--output_dir=/tmp/o\x00ut")), EITHER),
    (3, "argv logging_dir NUL", _edit_record(lambda d: d["argv"].append("--logging_dir=/tmp/l\x00ogs")), EITHER),
    (3, "argv sample_prompts NUL", _edit_record(lambda d: d["argv"].append("--sample_prompts=p\x00.txt")), EITHER),
    (3, "argv output_name NUL", _edit_record(lambda d: d["argv"].append("--output_name=a\x00b")), EITHER),
    (3, "cwd NUL", _edit_record(_set(cwd="/tmp/c\x00wd")), EITHER),
    (3, "log NUL", _edit_record(_set(log="tr\x00ain.log")), EITHER),
    (6, "started NaN", _edit_record(lambda d: json.dumps({**d, "started": 1.5}).replace("1.5", "NaN")), EITHER),
    (5, "started year 99999", _edit_record(_set(started="99999-01-01T00:00:00")), EITHER),
    (
        5,
        "finished before started",
        _edit_record(_set(started="2030-01-01T00:00:00", finished="1970-01-01T00:00:00")),
        EITHER,
    ),
    (5, "duration 1e400", _edit_record(lambda d: json.dumps({**d, "duration_s": 1.5}).replace("1.5", "1e400")), EITHER),
    (4, "record not UTF-8", _edit_record(lambda d: b'\xff\xfe{"argv": []}'), EITHER),
    (7, "saves truncated", _damage_files(".safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{"), EITHER),
    (7, "saves NaN/inf", _nan_saves, EITHER),
    (7, "events garbage", _damage_files("events", b"\xff" * 64), EITHER),
    (7, "samples not PNG", _damage_files(".png", b"\x89PNG\r\n\x1a\nnot really"), EITHER),
    (10, "prompt file garbage", _damage_files(".txt", b"\xff\xfe--w inf --n\x00"), EITHER),
]


def report_cases() -> Iterator[Case]:
    """report RUN over a run folder others wrote: its record, events, samples and saves may be anything."""
    for cls, label, mutate, expect in REPORT_MUTATIONS:

        def build(folder: Path, mutate=mutate) -> list[str]:
            folder.mkdir(parents=True, exist_ok=True)
            rec_folder = mutate(folder)
            return ["report", str(rec_folder), "--json"]

        yield Case(cls, f"report:{label}", build, expect, timeout=60.0, forbid=("Warning:",))

    def output_dir_run(folder: Path) -> list[str]:  # the newest record found through output_dir
        _edit_record(lambda d: "[" * 100_000 + "]" * 100_000)(folder)
        return ["report", str(folder / "r" / "out"), "--json"]

    yield Case(1, "report:output_dir whose record is nested deep", output_dir_run, EITHER, timeout=60.0)

    def page_of_damaged_run(folder: Path) -> list[str]:  # the HTML page and its figures, not just --json
        rec_folder = _nan_saves(folder)
        _edit_record(_set(started="1970-01-01T00:00:00", argv=[{"a": 1}]))(folder / "second")
        (rec_folder / "record.json").write_text(json.dumps({"argv": 5, "status": None}), encoding="utf-8")
        return ["report", str(rec_folder), "-o", str(folder / "page")]

    page = Case(7, "report:page of a damaged run", page_of_damaged_run, EITHER, timeout=60.0, forbid=("Warning:",))
    page.writes = True
    yield page
    yield Case(3, "report:RUN with NUL", lambda f: ["report", str(f / "r\x00un"), "--json"], REFUSE)

    def onto_a_file(folder: Path) -> list[str]:
        rec_folder = _report_run(folder)
        (folder / "taken").write_text("mine\n", encoding="utf-8")
        return ["report", str(rec_folder), "-o", str(folder / "taken")]

    yield Case(15, "report:-o onto a file", onto_a_file, REFUSE, needles=("--output",), timeout=60.0)
    yield Case(
        3,
        "report:-o with NUL",
        lambda f: ["report", str(_report_run(f)), "-o", str(f / "o\x00ut")],
        REFUSE,
        timeout=60.0,
    )


# ---------------------------------------------------------------- fit, runs, run --resume (merged after issue 9)

DEEP_JSON = "[" * 100_000 + "]" * 100_000


def _with_state(state_text: str, name: str = "my-sdxl-lora-step00000010-state"):
    """A state folder as sd-scripts' save_state names it, holding the given train_state.json."""

    def files(folder: Path) -> None:
        state = folder / "out" / name
        state.mkdir(parents=True)
        (state / "train_state.json").write_text(state_text, encoding="utf-8")

    return files


def later_verb_cases() -> Iterator[Case]:
    """fit (a config and --gpu/--vram), runs (records written by others) and run --resume (a state folder
    written by others): each in every CI sample."""
    fit_values = [
        (3, "NUL output_name", with_values(saving={"output_name": "a\x00b"}), REFUSE),
        (6, "lr inf", with_values(optimizer={"learning_rate": math.inf}), REFUSE),
        (2, "network_dim []", with_values(network={"network_dim": []}), REFUSE),
        (5, "network_dim 1e22", with_values(network={"network_dim": 10**22}), EITHER),
        (5, "batch 1e9", with_values(training={"train_batch_size": 10**9}), EITHER),
        (5, "resolution 1e8", with_values(dataset={"resolution": "100000000,100000000"}), EITHER),
        (5, "accumulation 1e9", with_values(training={"gradient_accumulation_steps": 10**9}), EITHER),
    ]
    for cls, label, data_fn, expect in fit_values:
        yield config_case(cls, f"fit {label}", data_fn, "fit", expect)
    for cls, label, opts, expect in [
        (6, "--vram inf", ["--vram", "inf"], EITHER),
        (6, "--vram nan", ["--vram", "nan"], REFUSE),
        (5, "--vram 1e308", ["--vram", "1e308"], EITHER),
        (3, "--gpu NUL", ["--gpu", "A100\x00"], REFUSE),
        (2, "--gpu unknown", ["--gpu", "\x1b[2J" * 1000], REFUSE),
        (5, "--probe-steps 1e20 (no --probe)", ["--probe-steps", "100000000000000000000"], EITHER),
    ]:
        yield config_case(cls, f"fit {label}", base_config, "fit", expect, sets=(), extra_args=opts)

    prodigy = {"optimizer_type": "Prodigy", "learning_rate": 1.0}
    optargs = [  # typed optimizer_args: inf only where the constructor's default is unbounded
        (6, "growth_rate = inf (Prodigy's default)", {**prodigy, "optimizer_args": {"growth_rate": math.inf}}, OK),
        (6, "weight_decay = inf", {**prodigy, "optimizer_args": {"weight_decay": math.inf}}, REFUSE),
        (6, "d_coef = -inf", {**prodigy, "optimizer_args": {"d_coef": -math.inf}}, REFUSE),
        (6, "betas = [inf, 0.9]", {**prodigy, "optimizer_args": {"betas": [math.inf, 0.9]}}, REFUSE),
        (6, "growth_rate = nan", {**prodigy, "optimizer_args": {"growth_rate": math.nan}}, REFUSE),
        (6, "list weight_decay=1e999", {**prodigy, "optimizer_args": ["weight_decay=1e999"]}, REFUSE),
        (6, "list growth_rate=1e999", {**prodigy, "optimizer_args": ["growth_rate=1e999"]}, OK),
        (1, "args nested", {**prodigy, "optimizer_args": {"betas": nested_array(600)}}, REFUSE),
        (3, "args NUL key", {**prodigy, "optimizer_args": {"d\x00_coef": 1.0}}, REFUSE),
    ]
    for i, (cls, label, values, expect) in enumerate(optargs):
        yield config_case(
            cls, f"optimizer_args {label}", with_values(optimizer=values), ("dry-run", "check")[i % 2], expect
        )

    records = [
        (1, "nested deep", DEEP_JSON),
        (2, "a list", "[1, 2]"),
        (
            2,
            "fields of wrong types",
            json.dumps(
                {
                    "argv": 5,
                    "status": {"a": 1},
                    "started": [1],
                    "exit_code": "x",
                    "config_file": 7,
                    "duration_s": "long",
                    "progress": 3,
                }
            ),
        ),
        (6, "NaN duration", '{"status": "succeeded", "duration_s": NaN, "started": "2026-01-01T00:00:00"}'),
        (3, "NUL texts", json.dumps({"status": "fail\x00ed", "config_file": "a\x00.toml", "cause": "\x00"})),
        (14, "escapes in texts", json.dumps({"status": "\x1b[2J", "config_file": "\x1b]0;x\x07", "cause": "\r"})),
    ]
    for cls, label, text in records:

        def build_runs(folder: Path, text=text) -> list[str]:
            rec = folder / "out" / "loratrain-runs" / "x-20260101-000000"
            rec.mkdir(parents=True)
            (rec / "record.json").write_text(text, encoding="utf-8")
            return ["runs", str(folder / "out")]

        yield Case(cls, f"runs: record {label}", build_runs, EITHER)
        yield Case(cls, f"runs --json: record {label}", lambda f, b=build_runs: b(f) + ["--json"], EITHER)

    states = [
        (1, "nested deep", DEEP_JSON, REFUSE),
        (2, "a list", "[1]", REFUSE),
        (2, "step a table", '{"current_epoch": 1, "current_step": {"a": 1}}', REFUSE),
        (6, "step NaN", '{"current_epoch": 1, "current_step": NaN}', REFUSE),
        (6, "step 1e400", '{"current_epoch": 1, "current_step": 1e400}', REFUSE),
        (5, "step 1e22", '{"current_epoch": 1, "current_step": 10000000000000000000000}', EITHER),
        (5, "step negative", '{"current_epoch": -1, "current_step": -5}', EITHER),
    ]
    for cls, label, text, expect in states:
        yield config_case(
            cls, f"run --resume, train_state {label}", base_config, "resume", expect, extra_files=_with_state(text)
        )


def sweep_cases() -> Iterator[Case]:
    """sweep (hostile --vary text, grids too large to build) and compare (a sweep.toml written by others)."""
    many = ",".join(str(i) for i in range(1, 100_001))
    twenty = ",".join(str(i) for i in range(1, 21))  # each list is short; the grid (400 runs) is not
    varies = [
        (3, "NUL value", ["network.network_dim=4,8\x00"], REFUSE),
        (3, "NUL key", ["network.net\x00work_dim=4,8"], REFUSE),
        (1, "value nested deep", ["network.network_dim=" + "[" * 5000 + "]" * 5000], REFUSE),
        (5, "100000 values", [f"network.network_dim={many}"], REFUSE),
        (5, "a 20 x 20 grid", [f"network.network_dim={twenty}", f"network.network_alpha={twenty}"], REFUSE),
        (6, "lr inf", ["optimizer.learning_rate=inf,1e-4"], REFUSE),
        (2, "a whole table", ["dataset=1,2"], REFUSE),
        (2, "unbalanced quote", ['network.network_dim="4,8'], REFUSE),
    ]
    for cls, label, texts, expect in varies:
        args = [a for t in texts for a in ("--vary", t)]

        def build(folder: Path, args=args) -> list[str]:
            paths = material(folder)
            (folder / "run.toml").write_text(dumps(base_config(paths)), encoding="utf-8")
            return ["sweep", str(folder / "run.toml"), *args, "-o", str(folder / "sw")]

        yield Case(cls, f"sweep:{label}", build, expect, timeout=30.0)

    def damaged_sweep(text: str | bytes) -> Callable[[Path], list[str]]:
        def build(folder: Path) -> list[str]:
            sw = folder / "sw"
            sw.mkdir(parents=True)
            if isinstance(text, bytes):
                (sw / "sweep.toml").write_bytes(text)
            else:
                (sw / "sweep.toml").write_text(text, encoding="utf-8")
            return ["compare", str(sw), "--json"]

        return build

    for cls, label, text in [
        (1, "nested deep", "runs = " + "[" * 5000 + "]" * 5000),
        (2, "runs a string", 'runs = "x"'),
        (2, "run entries of wrong types", 'base = 1\n[runs.a]\nconfig = 5\noutput_dir = ["x"]\nvalues = 3\n'),
        (3, "NUL in a path", '[runs.a]\noutput_dir = "o\\u0000ut"\n[runs.b]\noutput_dir = "b"\n'),
        (10, "not UTF-8", b"\xff\xfe[runs]\x00"),
    ]:
        yield Case(cls, f"compare:sweep.toml {label}", damaged_sweep(text), EITHER, timeout=30.0)
