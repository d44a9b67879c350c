"""`loratrain doctor`: can the training environment run this config? One probe run, one line per problem."""

from __future__ import annotations

from typing import Optional

import typer

from loratrain.commands._config import SD_SCRIPTS_HELP, SetOption, effective, load

_MARK = {"ok": "ok", "warning": "warn", "error": "FAIL", "skipped": "skip"}


def register(app: typer.Typer) -> None:
    @app.command(
        "doctor",
        help="Check that the training interpreter can run this config: torch and the GPUs (a tiny matmul in "
        "the training precision), accelerate, the network module, the optimizer's package, xformers, "
        "loggers, sd-scripts' pinned packages. Each problem comes with the command that fixes it. "
        "Exit 0 when it can run, 2 when not.",
    )
    def doctor(
        config: Optional[str] = typer.Argument(
            None,
            help="The run's TOML file; without one, loratrain's own Python and "
            "sd-scripts' defaults (AdamW, no network module) are checked.",
        ),
        as_json: bool = typer.Option(
            False, "--json", help="Print {ok, python, checks, errors, warnings, effective, request} as JSON."
        ),
        set_: Optional[list[str]] = SetOption,
        sd_scripts: Optional[str] = typer.Option(None, "--sd-scripts", help=SD_SCRIPTS_HELP),
        python: Optional[str] = typer.Option(
            None, "--python", help="Check this interpreter instead of the config's `python`."
        ),
    ) -> int:
        return _doctor(config, as_json, set_, sd_scripts, python)


def _doctor(config, as_json, set_, sd_scripts, python) -> int:
    import os
    import sys
    from pathlib import Path

    from loratrain.commands._output import print_json, print_problems
    from loratrain.effective import Effective
    from loratrain.errors import EXIT_CONFIG, EXIT_OK, ConfigError, Problem
    from loratrain.launch import doctor as doctor_mod
    from loratrain.launch import gpus as gpu_mod
    from loratrain.launch import preflight
    from loratrain.sdscripts import install as sdscripts

    env = dict(os.environ)
    view = Effective.from_args({})  # no config: sd-scripts' defaults
    cfg_python = None
    cfg_folder = None
    loaded = None
    if config:
        loaded = load(config, set_, quiet=as_json)
        view = effective(loaded.config)
        cfg_python = loaded.config.python
        cfg_folder = loaded.config.sd_scripts
    interpreter = python or cfg_python or sys.executable
    problems: list[Problem] = []
    folder = None
    if sdscripts.chosen(sd_scripts, cfg_folder, env) is not None:
        try:
            folder = sdscripts.locate(sd_scripts, cfg_folder, env)
        except ConfigError as exc:
            problems += exc.problems
    scan = gpu_mod.scan_light(env)
    try:
        report = doctor_mod.diagnose(
            doctor_mod.DoctorInput(
                args=view.args,
                view=view,
                python=interpreter,
                sd_scripts=folder,
                env=env,
                config_file=str(config or ""),
                gpus_listed=scan.count if scan.source == "nvidia-smi" else None,
            )
        )
    except ConfigError as exc:  # the interpreter cannot run, or died loading a package
        report = doctor_mod.Report(python=interpreter, effective=view.facts())
        report.add("interpreter", "error", exc.problems[0].message, exc.problems[0])
    problems += report.problems
    if loaded is not None:
        tokenizers = preflight.check_tokenizers(
            preflight.PreflightInput(
                args=view.args, python=interpreter, env=env, cwd=Path.cwd(), config_file=str(config)
            )
        )
        report.checks.append(
            doctor_mod.Check(
                "tokenizers",
                tokenizers[0].severity if tokenizers else "ok",
                tokenizers[0].message if tokenizers else "both SDXL tokenizers are in tokenizer_cache_dir",
            )
        )
        problems += tokenizers
        from loratrain.config.placement import place_problems

        problems = place_problems(problems, loaded.path, loaded.lines)
    report.problems = problems
    failed = any(p.severity != "warning" for p in problems)
    if as_json:
        print_json(report.as_dict())
    else:
        typer.echo(f"training interpreter: {report.python}")
        for check in report.checks:
            typer.echo(f"  {_MARK.get(check.status, check.status):>4}  {check.name}: {check.detail}")
        print_problems(problems)
        errors = sum(1 for p in problems if p.severity != "warning")
        typer.echo(
            f"{errors} problem(s) to fix before training"
            if failed
            else "the environment can run this config" + (f" ({len(problems)} warning(s))" if problems else "")
        )
    return EXIT_CONFIG if failed else EXIT_OK
