"""`loratrain check`: validate a config and run the preflight checks; report every problem."""

from __future__ import annotations

from typing import Optional

import typer

from loratrain.commands._config import SD_SCRIPTS_HELP, STRICT_HELP, SetOption, fail_if_strict, load
from loratrain.errors import EXIT_CONFIG


def register(app: typer.Typer) -> None:
    @app.command(
        "check",
        help="Validate a config and check files, GPUs and the training environment: every error and "
        "warning at once. Exit 0 when it can run, 2 when not.",
    )
    def check(
        config: str = typer.Argument(..., help="The run's TOML file."),
        set_: Optional[list[str]] = SetOption,
        strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print {ok, warnings} as JSON."),
        no_preflight: bool = typer.Option(
            False, "--no-preflight", help="Only validate the config; touch no file, GPU or interpreter."
        ),
        verify_parser: bool = typer.Option(
            False,
            "--verify-parser",
            help="Also parse the rendered arguments with the installed "
            "sd-scripts' own parser (imports sd-scripts in the training interpreter: slow).",
        ),
        sd_scripts: Optional[str] = typer.Option(None, "--sd-scripts", help=SD_SCRIPTS_HELP),
        force: bool = typer.Option(False, "--force", help="Do not report an existing output file (as `run --force`)."),
        machine_rank: Optional[int] = typer.Option(None, "--machine-rank", min=0, help="Check as this machine's rank."),
    ) -> int:
        from loratrain.commands._output import print_json
        from loratrain.errors import ConfigError

        try:
            return _check_body(
                config, set_, strict, as_json, no_preflight, verify_parser, sd_scripts, force, machine_rank
            )
        except ConfigError as exc:
            if not as_json:
                raise
            # Scripts reading --json get the verdict on stdout too, not only a message on stderr.
            errors = [p.render() for p in exc.problems if p.severity != "warning"]
            print_json(
                {
                    "ok": False,
                    "problems": [p.as_dict() for p in exc.problems],
                    "errors": errors,
                    "warnings": [p.render() for p in exc.problems if p.severity == "warning"],
                }
            )
            return EXIT_CONFIG


def _check_body(config, set_, strict, as_json, no_preflight, verify_parser, sd_scripts, force, machine_rank) -> int:
    import dataclasses

    from loratrain.commands._config import effective
    from loratrain.commands._output import print_json, print_problems
    from loratrain.errors import ConfigError

    loaded = load(config, set_, strict, quiet=as_json)
    warnings = list(loaded.warnings)
    if not no_preflight or verify_parser:
        from loratrain.launch import prepare as launch
        from loratrain.sdscripts import install as sdscripts

        opts = launch.LaunchOptions(
            sd_scripts=sd_scripts, force=force, preflight=not no_preflight, machine_rank=machine_rank
        )
        prepared = launch.prepare(loaded, opts)
        extra = [w for w in prepared.warnings if w not in loaded.warnings]
        if verify_parser:
            rejected = sdscripts.verify_parser(
                prepared.python, prepared.sd_scripts, sdscripts.script_args_of(prepared.command.argv)
            )
            rejected = [dataclasses.replace(p, file=config) for p in rejected]
            if rejected:
                raise ConfigError(rejected + extra)
        fail_if_strict(extra, strict)
        if not as_json:
            print_problems(extra)
        warnings += extra
    view = effective(loaded.config)
    if as_json:
        print_json(
            {
                "ok": True,
                "problems": [w.as_dict() for w in warnings],
                "warnings": [w.render() for w in warnings],
                "effective": view.facts(),
            }
        )
    else:
        note = f" ({len(warnings)} warning(s))" if warnings else ""
        done = "config valid" if no_preflight else "ready to run"
        typer.echo(f"{config}: OK, {done}{note}" + ("; sd-scripts' parser accepts every flag" if verify_parser else ""))
        if not no_preflight:
            from loratrain.commands._config import effective
            from loratrain.commands._output import verdict_line

            line = verdict_line(effective(loaded.config))
            if line:
                typer.echo(line)
            from loratrain.audit.stamp import pointer

            line = pointer(loaded.config.script_args(), config)
            if line:
                typer.echo(line)
    return 0
