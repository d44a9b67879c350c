"""`loratrain doctor` against real interpreters: virtual environments made here, each broken one way.

Each environment is a `python -m venv --without-pip` whose site-packages links every entry of the test
environment's site-packages, except the package a test hides; a test may also put in a package that
fails on import the way a broken install does (an ImportError, a missing shared library, a CUDA setup
error, a crash) or that reports another version. The probe really runs in that interpreter: real torch,
real accelerate, real importlib.metadata. sd-scripts' real requirements.txt (fixtures/
sd_scripts_requirements, origin in its README) sits in a fake checkout, so the pins are the real ones.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from helpers import (
    BASE,
    FIXTURE_SD_SCRIPTS,
    PINS,
    REQUIREMENTS,
    loratrain,
    make_env,
    make_project,
    records,
    run_cli,
    write_metadata,
)

from loratrain.launch import doctor


def write_package(
    site: Path, name: str, init: str, version: str, dist: str | None = None, files: dict[str, str] | None = None
) -> None:
    """A package as pip leaves it: the import package and a .dist-info whose METADATA names its version."""
    (site / name).mkdir()
    (site / name / "__init__.py").write_text(init)
    for rel, text in (files or {}).items():
        (site / name / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / name / rel).write_text(text)
    write_metadata(site, dist or name, version)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """An sd-scripts folder with the real requirements.txt (and the fixture's script and networks)."""
    folder = tmp_path_factory.mktemp("sd") / "sd-scripts"
    shutil.copytree(FIXTURE_SD_SCRIPTS, folder)
    shutil.copy(REQUIREMENTS, folder / "requirements.txt")
    return folder


def doctor_cli(
    tmp_path: Path, python: str, checkout: Path, *sets: str, env: dict[str, str] | None = None, json_out: bool = True
) -> tuple[int, dict | str]:
    config = tmp_path / "run.toml"
    config.write_text(f'python = "{python}"\nsd_scripts = "{checkout}"\n' + BASE)
    args = ["doctor", str(config)] + [item for s in sets for item in ("--set", s)] + (["--json"] if json_out else [])
    done = run_cli(*args, env={"HOME": str(tmp_path), "WANDB_API_KEY": "", **(env or {})}, timeout=300)
    if not json_out:
        return done.returncode, done.stderr
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


def fix_lines(result: dict) -> list[str]:
    return result["errors"]


def assert_fixed_by(result: dict, code: int, message: str, fix: str) -> None:
    """Exit 2, and one error line that says what is wrong and ends with the exact fix command."""
    assert code == 2, result
    lines = [e for e in result["errors"] if message in e]
    assert lines, result["errors"]
    assert lines[0].endswith(f"({fix})"), lines[0]


# ---------------------------------------------------------------- the complete environment


def test_a_complete_environment_passes_with_every_check_listed(tmp_path, checkout):
    python, _ = make_env(tmp_path / "venv")
    code, result = doctor_cli(tmp_path, python, checkout)
    assert code == 0 and result["ok"] is True, result
    assert result["python"] == python
    names = {c["name"]: c for c in result["checks"]}
    assert names["torch"]["status"] == "ok" and names["accelerate"]["status"] == "ok"
    assert names["network module"]["detail"] == "networks.lora found"
    assert names["optimizer"]["detail"] == "AdamW: torch.optim.AdamW"
    assert names["GPU"] == {"name": "GPU", "status": "skipped", "detail": "skipped: no CUDA device"}
    assert names["requirements"]["status"] == "ok"


def test_a_version_far_from_the_pin_is_a_warning_naming_both_versions(tmp_path, checkout):
    python, site = make_env(tmp_path / "venv", hide=("toml",))
    write_package(site, "toml", "__version__ = '0.9.6'\n", "0.9.6")
    code, result = doctor_cli(tmp_path, python, checkout)
    assert code == 0, result
    (line,) = [w for w in result["warnings"] if "requirements.txt pins 0.10.2" in w]
    assert "toml 0.9.6 is installed; sd-scripts' requirements.txt pins 0.10.2" in line
    assert line.endswith(f"({python} -m pip install toml==0.10.2)")


# ---------------------------------------------------------------- broken environments, each with its fix


def test_accelerate_missing(tmp_path, checkout):
    python, _ = make_env(tmp_path / "venv", hide=("accelerate",))
    code, result = doctor_cli(tmp_path, python, checkout)
    assert_fixed_by(
        result,
        code,
        "the launch runs accelerate, but accelerate is not installed",
        f"{python} -m pip install accelerate==1.6.0",
    )


def test_torch_whose_shared_library_is_missing(tmp_path, checkout):
    python, site = make_env(tmp_path / "venv", hide=("torch",))
    write_package(
        site,
        "torch",
        "raise OSError('libcudnn.so.9: cannot open shared object file: No such file or directory')\n",
        "2.13.0",
    )
    code, result = doctor_cli(tmp_path, python, checkout)
    assert_fixed_by(result, code, "importing torch in", f"{python} -m pip install --force-reinstall torch")
    (error,) = result["errors"]  # accelerate fails with it, but only torch's fix is offered
    assert "OSError: libcudnn.so.9: cannot open shared object file" in error


def test_prodigy_without_prodigyopt(tmp_path, checkout):
    python, _ = make_env(tmp_path / "venv", hide=("prodigyopt",))
    code, result = doctor_cli(tmp_path, python, checkout, "optimizer.optimizer_type=Prodigy")
    assert_fixed_by(
        result,
        code,
        "optimizer_type Prodigy needs prodigyopt.Prodigy, but prodigyopt is not installed",
        f"{python} -m pip install prodigyopt==1.1.2",
    )


def test_bitsandbytes_whose_cuda_library_does_not_load(tmp_path, checkout):
    python, site = make_env(tmp_path / "venv", hide=("bitsandbytes",))
    # bitsandbytes 0.41's own words when its CUDA library cannot be set up.
    write_package(
        site,
        "bitsandbytes",
        "raise RuntimeError('CUDA Setup failed despite GPU being available. Please run the "
        "following command to get more information: python -m bitsandbytes')\n",
        "0.41.1",
        files={"optim/__init__.py": ""},
    )
    code, result = doctor_cli(tmp_path, python, checkout, "optimizer.optimizer_type=AdamW8bit")
    assert_fixed_by(
        result,
        code,
        "importing bitsandbytes.optim.AdamW8bit in",
        f"{python} -m pip install --force-reinstall bitsandbytes",
    )
    assert any("RuntimeError: CUDA Setup failed despite GPU being available" in e for e in result["errors"])


def test_lycoris_missing_for_a_lycoris_network(tmp_path, checkout):
    python, _ = make_env(tmp_path / "venv", hide=("lycoris_lora",))
    code, result = doctor_cli(tmp_path, python, checkout, "network.network_module=lycoris.kohya")
    assert_fixed_by(
        result, code, "network_module lycoris.kohya cannot be imported", f"{python} -m pip install lycoris_lora==4.1.3"
    )


def test_logging_dir_without_tensorboard(tmp_path, checkout):
    python, _ = make_env(tmp_path / "venv", hide=("tensorboard",))
    code, result = doctor_cli(tmp_path, python, checkout, f"logging.logging_dir={tmp_path / 'logs'}")
    assert_fixed_by(
        result,
        code,
        "logging_dir logs through tensorboard, but tensorboard is not installed",
        f"{python} -m pip install tensorboard",
    )


def test_wandb_logging_without_wandb(tmp_path, checkout):
    python, _ = make_env(tmp_path / "venv", hide=("wandb",))
    code, result = doctor_cli(tmp_path, python, checkout, "logging.log_with=wandb")
    assert_fixed_by(result, code, "needs wandb, but wandb is not installed", f"{python} -m pip install wandb")


def test_wandb_installed_but_no_api_key_anywhere(tmp_path, checkout):
    python, site = make_env(tmp_path / "venv", hide=("wandb",))
    write_package(site, "wandb", "__version__ = '0.19.1'\n", "0.19.1")
    code, result = doctor_cli(tmp_path, python, checkout, "logging.log_with=wandb")
    assert_fixed_by(
        result,
        code,
        "log_with wandb needs an API key",
        f"set wandb_api_key in the config, export WANDB_API_KEY, or run `{python} -m wandb login`",
    )
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    code, result = doctor_cli(tmp_path, python, checkout, "logging.log_with=wandb")
    assert code == 0, result


def test_xformers_missing(tmp_path, checkout):
    python, _ = make_env(tmp_path / "venv", hide=("xformers",))
    code, result = doctor_cli(tmp_path, python, checkout, "training.xformers=true")
    torch_version = metadata.version("torch").split("+")[0]
    assert_fixed_by(
        result,
        code,
        "xformers = true, but xformers is not installed",
        f'{python} -m pip install --upgrade xformers "torch=={torch_version}"',
    )


def test_xformers_built_for_another_torch(tmp_path, checkout):
    python, site = make_env(tmp_path / "venv", hide=("xformers",))
    # xformers records the torch it was compiled against in cpp_lib.json next to its package.
    build = {"version": {"torch": "2.5.1+cu124", "cuda": 1204, "python": "3.11.10"}, "env": {}}
    write_package(
        site,
        "xformers",
        "__version__ = '0.0.28.post3'\n",
        "0.0.28.post3",
        files={"ops/__init__.py": "", "cpp_lib.json": json.dumps(build)},
    )
    code, result = doctor_cli(tmp_path, python, checkout, "training.xformers=true")
    torch_version = metadata.version("torch")
    assert_fixed_by(
        result,
        code,
        f"xformers 0.0.28.post3 was built for torch 2.5.1+cu124, but {python} has torch {torch_version}",
        f'{python} -m pip install --upgrade xformers "torch=={torch_version.split("+")[0]}"',
    )


def test_torch_compile_without_triton(tmp_path, checkout):
    python, _ = make_env(tmp_path / "venv", hide=("triton",))
    code, result = doctor_cli(tmp_path, python, checkout, "extra.torch_compile=true")
    assert_fixed_by(
        result, code, "torch_compile needs triton, but triton is not installed", f"{python} -m pip install triton"
    )


def test_a_pinned_requirement_missing(tmp_path, checkout):
    python, _ = make_env(tmp_path / "venv", hide=("voluptuous",), complete=False)
    code, result = doctor_cli(tmp_path, python, checkout)
    assert_fixed_by(
        result,
        code,
        "voluptuous (in sd-scripts' requirements.txt) is not installed",
        f"{python} -m pip install voluptuous==0.15.2",
    )


def test_a_dotted_optimizer_whose_package_is_missing(tmp_path, checkout):
    python, _ = make_env(tmp_path / "venv", hide=("pytorch-optimizer",))
    code, result = doctor_cli(tmp_path, python, checkout, "optimizer.optimizer_type=pytorch_optimizer.CAME")
    assert_fixed_by(
        result,
        code,
        "optimizer_type pytorch_optimizer.CAME needs pytorch_optimizer.CAME, but pytorch-optimizer is not installed",
        f"{python} -m pip install pytorch-optimizer==3.9.0",
    )


def test_a_package_that_crashes_the_interpreter_is_named(tmp_path, checkout):
    python, site = make_env(tmp_path / "venv", hide=("bitsandbytes",))
    write_package(site, "bitsandbytes", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", "0.45.0")
    code, result = doctor_cli(tmp_path, python, checkout, "optimizer.optimizer_type=AdamW8bit")
    assert_fixed_by(
        result,
        code,
        "was killed by signal 11 while loading bitsandbytes.optim.AdamW8bit",
        f"reinstall it: {python} -m pip install --force-reinstall bitsandbytes",
    )


def test_text_output_has_one_line_per_problem_with_the_fix(tmp_path, checkout):
    python, _ = make_env(tmp_path / "venv", hide=("prodigyopt",))
    code, stderr = doctor_cli(tmp_path, python, checkout, "optimizer.optimizer_type=Prodigy", json_out=False)
    assert code == 2
    (line,) = [ln for ln in stderr.splitlines() if "prodigyopt" in ln]
    assert line.startswith("error: ") and "run.toml" in line and "optimizer.optimizer_type" in line
    assert line.endswith(f"({python} -m pip install prodigyopt==1.1.2)")


def test_an_interpreter_that_does_not_exist_is_one_error(tmp_path, checkout):
    code, result = doctor_cli(tmp_path, str(tmp_path / "nope" / "python"), checkout)
    assert code == 2
    (line,) = result["errors"]
    assert "nope/python cannot be run" in line


# ---------------------------------------------------------------- the pieces


def test_requirements_are_read_as_written_including_extras_and_unpinned_lines():
    reqs = PINS
    assert reqs["diffusers"].pin == "0.32.1" and reqs["diffusers"].spec == "diffusers==0.32.1"
    assert reqs["bitsandbytes"].pin is None and reqs["bitsandbytes"].spec == "bitsandbytes"
    assert "-e" not in " ".join(reqs) and "albumentations" not in reqs  # options and commented-out lines


@pytest.mark.parametrize(
    "name, module, attr, dist",
    [
        ("AdamW8bit", "bitsandbytes.optim", "AdamW8bit", "bitsandbytes"),
        ("prodigy", "prodigyopt", "Prodigy", "prodigyopt"),
        ("Lion", "lion_pytorch", "Lion", "lion-pytorch"),
        ("DAdaptAdam", "dadaptation", "DAdaptAdam", "dadaptation"),
        ("AdamWScheduleFree", "schedulefree", "AdamWScheduleFree", "schedulefree"),
        ("Adafactor", "transformers.optimization", "Adafactor", "transformers"),
        ("RAdam", "torch.optim", "RAdam", None),
        ("prodigyplus.ProdigyPlusScheduleFree", "prodigyplus", "ProdigyPlusScheduleFree", "prodigy-plus-schedule-free"),
    ],
)
def test_each_optimizer_names_the_module_sd_scripts_imports(name, module, attr, dist):
    _, need = doctor.optimizer_need({"optimizer_type": name})
    assert (need.module, need.attr, need.dist) == (module, attr, dist)


def test_use_8bit_adam_means_adamw8bit_as_in_sd_scripts():
    assert doctor.optimizer_need({"use_8bit_adam": True})[1].attr == "AdamW8bit"
    assert doctor.optimizer_need({})[1] == doctor.OptimizerNeed("torch.optim", "AdamW")


@pytest.mark.parametrize(
    "cap, arch, ok",
    [
        ("12.0", ["sm_50", "sm_80", "sm_86", "sm_90"], False),  # a Blackwell card on a torch built before it
        ("12.0", ["sm_90", "sm_100", "sm_120"], True),
        ("8.6", ["sm_80"], True),  # same major, older minor: binary compatible
        ("8.0", ["sm_86"], False),
        ("9.0", ["sm_80", "compute_80"], True),  # PTX JIT-compiles forward
    ],
)
def test_compute_capability_against_the_arch_list(cap, arch, ok):
    assert doctor._capability_supported(cap, arch) is ok


def test_the_request_imports_only_what_the_config_uses():
    plain = doctor.build_request({"network_module": "networks.lora"}, None, None)
    assert [i["module"] for i in plain.imports] == ["torch", "accelerate", "torch.optim"]
    full = doctor.build_request(
        {
            "network_module": "lycoris.kohya",
            "optimizer_type": "AdamW8bit",
            "xformers": True,
            "torch_compile": True,
            "log_with": "all",
            "logging_dir": "logs",
            "mixed_precision": "bf16",
        },
        None,
        None,
    )
    assert [i["module"] for i in full.imports] == [
        "torch",
        "accelerate",
        "bitsandbytes.optim",
        "xformers",
        "xformers.ops",
        "triton",
        "wandb",
        "tensorboard",
    ]
    assert full.gpu == {"dtype": "bfloat16", "fp8": False, "bnb_class": "AdamW8bit", "xformers": True}
    assert full.locate == ["lycoris.kohya"]


# ---------------------------------------------------------------- GPU answers (recorded shape) and the real GPU path


class Answered:
    """A probe that already answered: the JSON the probe prints on a GPU machine (this one has none)."""

    def __init__(self, data: dict):
        self.data = data

    def result(self, timeout: float = 0) -> dict:
        return self.data


def gpu_answer(capability: str, arch: list[str], matmul: str = "ok", **extra) -> dict:
    return {
        "python": "3.11.9",
        "executable": "/venv/bin/python",
        "located": {},
        "gpu_note": "",
        "versions": {"torch": "2.6.0+cu124", "accelerate": "1.6.0", "bitsandbytes": "0.45.0"},
        "imports": {
            "torch": {"ok": True, "version": "2.6.0+cu124"},
            "accelerate": {"ok": True},
            "torch.optim.AdamW": {"ok": True},
            "bitsandbytes.optim.AdamW8bit": {"ok": True},
        },
        "torch": {"version": "2.6.0+cu124", "cuda": "12.4", "arch_list": arch},
        "gpus": [{"index": 0, "name": "NVIDIA RTX PRO 6000", "capability": capability, "matmul": matmul, **extra}],
    }


def judged(args: dict, answer: dict) -> doctor.Report:
    return doctor.diagnose(doctor.DoctorInput(args=args, python="/venv/bin/python"), (None, Answered(answer)))


def test_a_gpu_newer_than_torchs_arch_list_is_an_error_with_the_cu128_install():
    report = judged(
        {"mixed_precision": "bf16"}, gpu_answer("12.0", ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"])
    )
    (p,) = [p for p in report.problems if p.severity == "error"]
    assert "torch 2.6.0+cu124 has no code for GPU 0 (NVIDIA RTX PRO 6000, compute capability 12.0)" in p.message
    assert p.fix == "/venv/bin/python -m pip install --upgrade torch --index-url https://download.pytorch.org/whl/cu128"


def test_a_failed_matmul_and_a_failed_8bit_step_are_errors():
    report = judged(
        {"mixed_precision": "bf16"}, gpu_answer("8.0", ["sm_80"], matmul="RuntimeError: CUDA error: no kernel image")
    )
    assert [p.message for p in report.problems] == [
        "a bfloat16 matmul on GPU 0 (NVIDIA RTX PRO 6000, compute capability 8.0) fails: RuntimeError: CUDA error: no kernel image"
    ]
    report = judged(
        {"optimizer_type": "AdamW8bit"}, gpu_answer("8.0", ["sm_80"], bnb_step="RuntimeError: CUDA Setup failed")
    )
    (p,) = report.problems
    assert "one AdamW8bit step on GPU 0" in p.message and p.fix.endswith(
        "pip install --upgrade --force-reinstall bitsandbytes"
    )


def test_gpus_that_pass_are_listed_with_the_precision():
    report = judged({"mixed_precision": "fp16"}, gpu_answer("8.9", ["sm_80", "sm_86", "sm_89", "sm_90"]))
    assert report.problems == []
    assert (
        doctor.Check("GPU 0", "ok", "GPU 0 (NVIDIA RTX PRO 6000, compute capability 8.9): float16 matmul")
        in report.checks
    )


def _cuda_python() -> str | None:
    """An interpreter whose torch sees a CUDA device (LORATRAIN_TEST_PYTHON, else this one), or None."""
    import os

    python = os.environ.get("LORATRAIN_TEST_PYTHON", sys.executable)
    if not shutil.which("nvidia-smi"):
        return None
    done = subprocess.run(
        [python, "-c", "import torch; print(torch.cuda.is_available())"], capture_output=True, text=True
    )
    return python if done.stdout.strip() == "True" else None


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["no", "fp16", "bf16"])
def test_on_a_real_gpu_each_device_runs_the_matmul_in_the_training_precision(precision):
    python = _cuda_python()
    if python is None:
        pytest.skip("needs a CUDA GPU and a CUDA torch (LORATRAIN_TEST_PYTHON or this interpreter)")
    report = doctor.diagnose(doctor.DoctorInput(args={"mixed_precision": precision}, python=python))
    gpus = [c for c in report.checks if c.name.startswith("GPU ")]
    assert gpus, report.checks
    for check in gpus:
        old = float(check.detail.split("compute capability ")[1].split(")")[0]) < 8.0
        if precision == "bf16" and old:
            continue  # preflight's GPU check reports bf16 on such a GPU
        assert check.status == "ok", check


@pytest.mark.gpu
@pytest.mark.parametrize(
    "args, check",
    [
        ({"optimizer_type": "AdamW8bit"}, "8-bit optimizer"),
        ({"xformers": True, "mixed_precision": "fp16"}, "xformers"),
    ],
)
def test_on_a_real_gpu_the_8bit_step_and_the_xformers_call_run(args, check):
    python = _cuda_python()
    if python is None:
        pytest.skip("needs a CUDA GPU and a CUDA torch (LORATRAIN_TEST_PYTHON or this interpreter)")
    report = doctor.diagnose(doctor.DoctorInput(args=args, python=python))
    if any("is not installed" in p.message for p in report.problems):
        pytest.skip(f"{check}: its package is not installed in {python}")
    found = [c for c in report.checks if c.name.startswith("GPU ") and c.name.endswith(check)]
    assert found and all(c.status == "ok" for c in found), report.checks


def test_check_runs_the_same_probe_and_stops_on_its_error(tmp_path, checkout):
    python, _ = make_env(tmp_path / "venv", hide=("prodigyopt",))
    root = tmp_path / "p"
    config = make_project(root, extra='[optimizer]\noptimizer_type = "Prodigy"\n')
    config.write_text(config.read_text().replace(f'python = "{sys.executable}"', f'python = "{python}"'))
    result = loratrain(root, "check", config.name, "--sd-scripts", str(checkout))
    assert result.returncode == 2
    (line,) = [ln for ln in result.stderr.splitlines() if "prodigyopt" in ln]
    assert line.startswith("error: mychar.toml:") and line.endswith(f"({python} -m pip install prodigyopt==1.1.2)")
    assert result.stderr.count("error:") == 1, result.stderr  # the complete environment has nothing else to fix


def test_a_dotted_optimizer_class_the_installed_package_lacks(tmp_path, checkout):
    python, site = make_env(tmp_path / "venv", hide=("prodigyopt",))
    write_package(site, "prodigyopt", "__version__ = '1.0'\nclass Prodigy:\n    pass\n", "1.0")
    code, result = doctor_cli(tmp_path, python, checkout, "optimizer.optimizer_type=prodigyopt.ProdigyNext")
    assert_fixed_by(
        result,
        code,
        "prodigyopt has no ProdigyNext (installed prodigyopt 1.0)",
        f"{python} -m pip install --upgrade prodigyopt",
    )


def test_the_run_record_takes_its_versions_from_the_doctor_probe_preflight_ran(tmp_path, monkeypatch):
    """`run` probes the training interpreter once: the record's versions are the doctor probe's answer."""
    from loratrain.sdscripts import install

    def second_probe(*args, **kwargs):
        raise AssertionError("the training interpreter was probed a second time for the record")

    monkeypatch.setattr(install, "probe", second_probe)
    root = tmp_path / "p"
    config = make_project(root)
    result = loratrain(root, "run", config.name, "--plain")
    assert result.returncode == 0, result.stderr
    (rec,) = records(root)
    assert set(rec["versions"]) >= {"training_python", *install.TRAINING_DISTS}
    for dist in ("torch", "accelerate", "lycoris_lora"):
        assert rec["versions"][dist] == metadata.version(dist)
    assert Path(rec["versions"]["training_python"]).resolve() == Path(sys.executable).resolve()


# ---------------------------------------------------------------- requirements judged by the module sd-scripts imports


def _swap_opencv(site: Path, dist: str, version: str = "4.10.0.84", init: str = "") -> None:
    """Replace the completed opencv-python stub by another distribution of cv2 (or a broken one)."""
    from helpers import write_stub

    shutil.rmtree(site / "cv2")
    for info in site.glob("opencv_python-*.dist-info"):
        shutil.rmtree(info)
    write_stub(site, dist, version, "cv2", init)


def test_the_headless_opencv_environment_of_the_issue_passes_and_run_launches(tmp_path, checkout):
    """Every pin of sd-scripts 48d368f, OpenCV as opencv-python-headless==4.10.0.84: the server environment that
    trained a real SDXL LoCon through `loratrain run`."""
    python, site = make_env(tmp_path / "venv")
    _swap_opencv(site, "opencv-python-headless")
    code, result = doctor_cli(tmp_path, python, checkout)
    # (this test environment's own accelerate, einops, ... are newer than the pins: drift warnings, no errors)
    assert code == 0 and result["errors"] == [] and not [w for w in result["warnings"] if "cv2" in w], result
    names = {c["name"]: c for c in result["checks"]}
    assert "requirement opencv-python" not in names  # met: no line of its own
    root = tmp_path / "p"
    config = make_project(root)
    config.write_text(config.read_text().replace(f'python = "{sys.executable}"', f'python = "{python}"'))
    done = loratrain(root, "run", config.name, "--sd-scripts", str(checkout), "--plain")
    assert done.returncode == 0, done.stderr
    assert "launching:" in done.stderr
    (rec,) = records(root)
    assert rec["status"] == "succeeded"


@pytest.mark.parametrize("dist", ["opencv-contrib-python", "opencv-contrib-python-headless"])
def test_the_contrib_builds_of_opencv_provide_cv2_too(tmp_path, checkout, dist):
    python, site = make_env(tmp_path / "venv")
    _swap_opencv(site, dist)
    code, result = doctor_cli(tmp_path, python, checkout)
    assert code == 0 and result["errors"] == [] and not [w for w in result["warnings"] if "cv2" in w], result


def test_opencv_that_cannot_load_libgl_is_fixed_with_the_headless_build(tmp_path, checkout):
    python, site = make_env(tmp_path / "venv")
    # opencv-python's own words on a server without libGL (cv2/__init__.py's bootstrap re-raises them).
    _swap_opencv(
        site,
        "opencv-python",
        init="raise ImportError('libGL.so.1: cannot open shared object file: No such file or directory')\n",
    )
    code, result = doctor_cli(tmp_path, python, checkout)
    assert_fixed_by(
        result,
        code,
        "cv2 (opencv-python 4.10.0.84) is installed, but importing it in",
        f"{python} -m pip uninstall -y opencv-contrib-python opencv-contrib-python-headless opencv-python && "
        f"{python} -m pip install --force-reinstall opencv-python-headless==4.10.0.84",
    )


def test_metadata_without_its_module_is_a_broken_install(tmp_path, checkout):
    """What uninstalling one of two OpenCV builds leaves: the other's metadata, and no cv2 folder."""
    python, site = make_env(tmp_path / "venv")
    shutil.rmtree(site / "cv2")
    code, result = doctor_cli(tmp_path, python, checkout)
    assert_fixed_by(
        result,
        code,
        "opencv-python 4.10.0.84 is installed, but its module cv2 is missing: a broken install",
        f"{python} -m pip install --force-reinstall opencv-python==4.10.0.84",
    )


def test_a_module_without_metadata_warns_and_does_not_block(tmp_path, checkout):
    python, site = make_env(tmp_path / "venv")
    for info in site.glob("opencv_python-*.dist-info"):
        shutil.rmtree(info)
    code, result = doctor_cli(tmp_path, python, checkout)
    assert code == 0, result
    (line,) = [w for w in result["warnings"] if "cv2" in w]
    assert "no installed distribution provides it" in line


def test_a_newer_minor_version_warns_and_never_blocks(tmp_path, checkout):
    python, site = make_env(tmp_path / "venv", hide=("einops",))
    write_package(site, "einops", "__version__ = '0.8.1'\n", "0.8.1")
    code, result = doctor_cli(tmp_path, python, checkout)
    assert code == 0, result
    (line,) = [w for w in result["warnings"] if "einops" in w]
    assert "einops 0.8.1 is installed; sd-scripts' requirements.txt pins 0.7.0" in line


def test_a_requirement_the_sdxl_path_never_imports_is_not_a_problem(tmp_path, checkout):
    python, site = make_env(tmp_path / "venv", hide=("ftfy", "rich", "sentencepiece"))
    for name in ("ftfy", "rich", "sentencepiece"):
        shutil.rmtree(site / name, ignore_errors=True)
        for info in site.glob(f"{name}-*.dist-info"):
            shutil.rmtree(info)
    code, result = doctor_cli(tmp_path, python, checkout)
    assert code == 0 and not [w for w in result["warnings"] if "ftfy" in w or "rich" in w], result
    names = {c["name"]: c for c in result["checks"]}
    assert names["requirement ftfy"]["status"] == "skipped"
    assert "does not import it" in names["requirement ftfy"]["detail"]
