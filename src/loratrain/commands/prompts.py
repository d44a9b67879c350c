"""`loratrain prompts FILE`: parse a sample-prompt file as sd-scripts does and count CLIP tokens."""

from __future__ import annotations

from typing import Optional

import typer

from loratrain.errors import EXIT_CONFIG, EXIT_OK
from loratrain.sdscripts import flags


def register(app: typer.Typer) -> None:
    @app.command(
        "prompts",
        help="Check a sample-prompt file (.txt, .toml, .json) on its own: each prompt, its "
        "options and its CLIP token count. Exit 2 when a prompt is over 75 tokens or the "
        "file is broken.",
    )
    def prompts(
        file: str = typer.Argument(..., help="The sample-prompt file (sd-scripts' --sample_prompts)."),
        as_json: bool = typer.Option(False, "--json", help="Print the prompts as JSON on stdout."),
        num_processes: int = typer.Option(
            1, "--num-processes", min=1, help="Training processes (GPUs), for the idle-GPU check."
        ),
        sampler: str = typer.Option(
            flags.default("sample_sampler"), "--sampler", help="sample_sampler of the run (the default for prompts)."
        ),
        tokenizer_cache_dir: Optional[str] = typer.Option(
            None, "--tokenizer-cache-dir", help="sd-scripts' tokenizer_cache_dir, to find the CLIP vocabulary there."
        ),
    ) -> int:
        from loratrain.commands._output import print_json, print_problems
        from loratrain.plan.planner import check_prompt_file

        report = check_prompt_file(
            file, num_processes=num_processes, default_sampler=sampler, tokenizer_cache_dir=tokenizer_cache_dir
        )
        if as_json:
            print_json(report.data)
        elif report.data["prompts"]:
            from loratrain.commands._plan_view import show_prompts

            show_prompts(report.data["prompts"], file)
        print_problems(report.problems)
        return EXIT_CONFIG if report.errors else EXIT_OK
