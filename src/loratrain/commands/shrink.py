"""`loratrain shrink`: resize a trained LoRA / LoCon with a recipe or one of sd-scripts' methods."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from loratrain.errors import ConfigError, Problem
from loratrain.shrink.recipes import CLI  # light module: torch is imported inside its functions

GUIDE_RECIPE = "fro_ckpt=1,thr=-3.55"
PRECISIONS = {"fp16": "float16", "bf16": "bfloat16", "float": "float32"}


def register(app: typer.Typer) -> None:
    @app.command(
        "shrink",
        help=(
            "Resize a trained LoRA/LoCon: keep only the directions of each layer's update that matter. "
            f"Default recipe: {GUIDE_RECIPE} (needs --base). sd-scripts' methods (--rank, --dynamic-method) "
            "need no base. Never grows a layer past its trained rank."
        ),
    )
    def shrink(
        lora: Path = typer.Argument(..., help="The LoRA/LoCon .safetensors file to shrink."),
        base: Optional[Path] = typer.Option(
            None, "--base", "-b", help="SDXL single-file checkpoint the LoRA was trained on (for *_ckpt/subspace)."
        ),
        output: Optional[Path] = typer.Option(
            None, "--output", "-o", help="Output .safetensors file (one selection) or folder. Default: next to LORA."
        ),
        recipe: Optional[str] = typer.Option(
            None, "--recipe", "-r", help="Recipe(s), e.g. 'fro_ckpt=1,thr=-3.55'; ':' separates several outputs."
        ),
        rank: Optional[int] = typer.Option(None, "--rank", help="sd-scripts fixed rank (a cap with --dynamic-method)."),
        conv_rank: Optional[int] = typer.Option(None, "--conv-rank", help="Fixed rank of conv (4-D) layers."),
        dynamic_method: Optional[str] = typer.Option(
            None, "--dynamic-method", help="sd-scripts dynamic method: sv_ratio, sv_fro or sv_cumulative."
        ),
        dynamic_param: Optional[float] = typer.Option(None, "--dynamic-param", help="Parameter of the dynamic method."),
        save_precision: Optional[str] = typer.Option(
            None, "--save-precision", help="fp16, bf16 or float. Default: the input's precision."
        ),
        device: str = typer.Option("cpu", "--device", help="Torch device for the decompositions (cpu, cuda, ...)."),
        keep_other: bool = typer.Option(
            False, "--keep-other", help="Copy LoHa/LoKr/other LyCORIS layers unchanged instead of refusing the file."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
        plot: Optional[Path] = typer.Option(None, "--plot", help="Draw the spectra against the threshold into a PNG."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing output files."),
    ) -> int:
        return run_shrink(
            lora,
            base,
            output,
            recipe,
            rank,
            conv_rank,
            dynamic_method,
            dynamic_param,
            save_precision,
            device,
            keep_other,
            json_out,
            plot,
            force,
        )


def _selections(recipe, rank, conv_rank, dynamic_method, dynamic_param):
    from loratrain.shrink.recipes import parse_recipes, sd_method

    sd_given = any(v is not None for v in (rank, conv_rank, dynamic_method, dynamic_param))
    if recipe is not None and sd_given:
        raise ConfigError(
            [
                Problem(
                    "--recipe cannot be combined with --rank/--conv-rank/--dynamic-method",
                    key="--recipe",
                    fix="use a recipe, or sd-scripts' methods, not both",
                    file=CLI,
                )
            ]
        )
    if sd_given:
        return [sd_method(rank, conv_rank, dynamic_method, dynamic_param)]
    return parse_recipes(recipe if recipe is not None else GUIDE_RECIPE)


def _output_paths(lora: Path, output: Optional[Path], selections) -> list[Path]:
    names = [f"{lora.stem}_{sel.tag()}.safetensors" for sel in selections]
    if output is None:
        return [lora.parent / n for n in names]
    if output.suffix == ".safetensors" and not output.is_dir():
        if len(selections) > 1:
            raise ConfigError(
                [
                    Problem(
                        f"{len(selections)} recipes give {len(selections)} files, but -o names one file",
                        key="--output",
                        file=str(output),
                        fix="give a folder to -o",
                    )
                ]
            )
        if not output.parent.is_dir():
            raise ConfigError([Problem("the output folder does not exist", key="--output", file=str(output))])
        return [output]
    if not output.is_dir():
        raise ConfigError(
            [
                Problem(
                    "not an existing folder nor a .safetensors file name",
                    key="--output",
                    file=str(output),
                    fix="create the folder, or name the output file *.safetensors",
                )
            ]
        )
    return [output / n for n in names]


def _plot_paths(plot: Path, selections) -> list[Path]:
    if len(selections) == 1:
        return [plot]
    return [plot.with_name(f"{plot.stem}_{sel.tag()}{plot.suffix or '.png'}") for sel in selections]


def _check_options(selections, base, save_precision) -> None:
    """--save-precision is known; a recipe that scores against the base checkpoint has --base."""
    if save_precision is not None and save_precision not in PRECISIONS:
        raise ConfigError(
            [
                Problem(
                    f"unknown precision {save_precision!r}",
                    key="--save-precision",
                    fix="one of fp16, bf16, float",
                    file=CLI,
                )
            ]
        )
    if base is None and any(sel.needs_base for sel in selections):
        needing = [sel.text for sel in selections if sel.needs_base]
        raise ConfigError(
            [
                Problem(
                    f"recipe {needing[0]} scores against the base checkpoint (*_ckpt or subspace)",
                    key="--base",
                    fix="add --base SDXL_CHECKPOINT.safetensors, or use fro_lora/spn_lora/params or --rank",
                    file=CLI,
                )
            ]
        )


def _check_plots(plots: list[Path]) -> None:
    """pillow is there, the plots' folder exists and no plot path names a folder (before any work is done)."""
    import importlib.util

    if importlib.util.find_spec("PIL") is None:
        raise ConfigError(
            [
                Problem(
                    "--plot needs pillow, which is not installed",
                    key="--plot",
                    fix="pip install pillow, or leave out --plot",
                    file=CLI,
                )
            ]
        )
    if not plots[0].parent.is_dir():
        raise ConfigError([Problem("the plot's folder does not exist", key="--plot", file=str(plots[0]))])
    folders = [p for p in plots if p.is_dir()]
    if folders:  # checked before any work: --force must not write the LoRA and then fail on the plot
        raise ConfigError(
            [
                Problem(
                    "--plot names a folder; give the PNG file to write",
                    key="--plot",
                    file=str(p),
                    fix="e.g. --plot spectra.png",
                )
                for p in folders
            ]
        )


def _check_targets(outs: list[Path], plots: list[Path], force: bool) -> None:
    """Each output's folder is writable; without --force nothing is overwritten."""
    for target in outs:
        effective = os.access in os.supports_effective_ids  # as the user the process acts as
        if not target.parent.is_dir() or not os.access(target.parent, os.W_OK | os.X_OK, effective_ids=effective):
            raise ConfigError(
                [
                    Problem(
                        "the output's folder does not exist or cannot be written",
                        key="--output",
                        file=str(target),
                        fix="pick a folder you can write to",
                    )
                ]
            )
    if not force:
        existing = [p for p in outs + plots if p.exists()]
        if existing:
            raise ConfigError(
                [Problem("output file exists", file=str(p), fix="pass --force to overwrite it") for p in existing]
            )


def _read_inputs(lora, base, keep_other, device):
    """The LoRA (refusing non-LoRA layers unless --keep-other), the base checkpoint, and a usable device."""
    import torch

    from loratrain.shrink.lorafile import read_lora

    lora_file = read_lora(lora)
    others = [o for o in lora_file.others.values()]
    if others and not keep_other:
        algos = sorted({o.algo for o in others})
        raise ConfigError(
            [
                Problem(
                    f"{len(others)} layers are not LoRA/LoCon ({', '.join(algos)}; first: {others[0].name}); "
                    "shrink resizes only down/up (optionally Tucker, DoRA) layers",
                    file=str(lora),
                    fix="pass --keep-other to copy those layers unchanged",
                )
            ]
        )
    checkpoint = None
    if base is not None:
        from loratrain.shrink.base import BaseCheckpoint

        checkpoint = BaseCheckpoint(base)
        checkpoint.check_layers(lora_file.layers, str(lora))
    try:
        torch.empty(0, device=device)
    except (RuntimeError, ValueError, AssertionError) as exc:  # CPU-only torch asserts on cuda
        problem = Problem(f"unusable torch device ({exc})", key="--device", fix="e.g. cpu or cuda", file=CLI)
        raise ConfigError([problem]) from None
    return lora_file, checkpoint


def _shrink_all(lora_file, checkpoint, selections, outs, plots, dtype, keep_other, device) -> list[dict]:
    """Analyse once, then build, write (and plot) one output per selection; their reports."""
    import torch

    from loratrain.shrink.lorafile import write_lora
    from loratrain.shrink.report import outcome_report
    from loratrain.shrink.resize import analyse, build

    with torch.no_grad():
        infos = analyse(lora_file, selections, checkpoint, device)
        reports = []
        for i, sel in enumerate(selections):
            outcome = build(lora_file, infos, sel, dtype, keep_other)
            size = write_lora(outs[i], outcome.tensors, outcome.metadata)
            reports.append(outcome_report(outcome, lora_file, outs[i], size))
            if plots:
                from loratrain.shrink.plot import draw

                draw(plots[i], outcome, lora_file)
                reports[-1]["plot"] = str(plots[i])
    return reports


def run_shrink(
    lora,
    base,
    output,
    recipe,
    rank,
    conv_rank,
    dynamic_method,
    dynamic_param,
    save_precision,
    device,
    keep_other,
    json_out,
    plot,
    force,
) -> int:
    from loratrain.errors import require_extra

    require_extra("shrink", "shrink")  # torch and safetensors: one line naming the extra, not a traceback
    selections = _selections(recipe, rank, conv_rank, dynamic_method, dynamic_param)
    _check_options(selections, base, save_precision)
    outs = _output_paths(lora, output, selections)
    plots = _plot_paths(plot, selections) if plot is not None else []
    if plots:
        _check_plots(plots)
    _check_targets(outs, plots, force)

    import torch

    from loratrain.shrink.report import text_lines

    lora_file, checkpoint = _read_inputs(lora, base, keep_other, device)
    dtype = getattr(torch, PRECISIONS[save_precision]) if save_precision else lora_file.dtype
    reports = _shrink_all(lora_file, checkpoint, selections, outs, plots, dtype, keep_other, device)
    if json_out:
        from loratrain.commands._output import print_json

        print_json({"input": str(lora), "base": str(base) if base else None, "outputs": reports})
    else:
        for rep in reports:
            typer.echo("\n".join(text_lines(rep)))
            if "plot" in rep:
                typer.echo(f"plot: {rep['plot']}")
    return 0
