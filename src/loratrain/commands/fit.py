"""`loratrain fit CONFIG`: predicted peak GPU memory, the verdict against the card, ranked advice."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from loratrain.commands._config import SD_SCRIPTS_HELP, STRICT_HELP, SetOption
from loratrain.errors import EXIT_OK, EXIT_RUNTIME

GPU_HELP = (
    "auto (default: the GPUs nvidia-smi lists, the smallest counts) or a card from the built-in table "
    "(h200, h100, a100-80, rtx4090, rtx3090, l4, t4, ...; a wrong name lists them all)."
)


def register(app: typer.Typer) -> None:
    @app.command(
        "fit",
        help="Predict the run's peak GPU memory (weights, adapter, gradients, optimizer state, "
        "activations, sampling, CUDA overhead) and the host RAM it needs while loading; say "
        "whether it fits the GPU and which --set changes make it fit or run faster. No torch.",
    )
    def fit(
        config: str = typer.Argument(..., help="The run's TOML file, or a sweep folder (each run's verdict)."),
        set_: Optional[list[str]] = SetOption,
        strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
        gpu: str = typer.Option("auto", "--gpu", help=GPU_HELP),
        vram: Optional[float] = typer.Option(
            None, "--vram", min=0.5, help="The GPU's memory in GiB (overrides --gpu)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the prediction, verdict and advice as JSON."),
        probe: bool = typer.Option(
            False,
            "--probe",
            help="Also run the config for a few real steps (temporary output "
            "folder, no saves kept, no logging, no samples unless --probe-samples) while "
            "polling nvidia-smi, and print predicted vs measured. Needs the GPU machine. "
            "Untested on a GPU so far.",
        ),
        probe_steps: int = typer.Option(3, "--probe-steps", min=1, help="Optimizer steps the probe trains."),
        probe_samples: bool = typer.Option(
            False, "--probe-samples", help="Let the probe draw the config's samples once, at its last step."
        ),
        sd_scripts: Optional[str] = typer.Option(None, "--sd-scripts", help=SD_SCRIPTS_HELP),
    ) -> int:
        from loratrain.commands._config import effective, load
        from loratrain.commands._output import card_for
        from loratrain.fit import cards, model
        from loratrain.fit.advice import advise
        from loratrain.sweep.record import is_sweep

        if is_sweep(Path(config)) and not probe:
            from loratrain.commands.sweep import fit_sweep

            return fit_sweep(Path(config), set_, gpu, vram, as_json)
        loaded = load(config, set_, strict, quiet=as_json)
        view = effective(loaded.config)
        card, vram_gib = card_for(gpu, vram)
        est = model.estimate(view)
        advice = advise(view, vram_gib) if vram_gib else []
        measured = None
        if probe:
            from loratrain.launch.probe import run_probe

            if not as_json:
                typer.echo(f"probe: training {probe_steps} step(s) of {config} into a temporary folder ...", err=True)
            measured = run_probe(config, list(set_ or []), probe_steps, probe_samples, sd_scripts)
        if as_json:
            from loratrain.commands._output import print_json

            data = est.as_dict()
            data["gpu"] = {"name": card, "gib": round(vram_gib, 2) if vram_gib else None}
            ram = _host_ram_gb()
            data["host_ram_gb"] = round(ram, 1) if ram else None
            data["effective"] = view.facts()
            data["verdict"] = cards.verdict(est.peak, vram_gib) if vram_gib else None
            data["fits"] = cards.fits(est.peak, vram_gib) if vram_gib else None
            data["advice"] = [
                {"set": a.set_line(), "peak_gib": round(a.peak / cards.GIB, 2), "why": a.why, "speedup": a.speedup}
                for a in advice
            ]
            data["calibration"] = [{"run": r, "what": w, "measured_gib": m} for r, w, m in model.CALIBRATION]
            if measured is not None:
                data["probe"] = {
                    "exit_code": measured.exit_code,
                    "measured_peak_gib": measured.peak_gib,
                    "in_use_before_gib": measured.before_gib,
                    "samples": measured.samples,
                    "duration_s": round(measured.duration_s, 1),
                    # why a failed probe failed, as the text output shows it
                    "log_tail": measured.log_tail if measured.exit_code != 0 else None,
                }
            print_json(data)
            return EXIT_OK if measured is None or measured.exit_code == 0 else EXIT_RUNTIME
        _show(config, est, card, vram_gib, advice)
        if measured is not None:
            return _show_probe(measured, est)
        return EXIT_OK


def _show_probe(measured, est) -> int:
    from loratrain.fit.cards import GIB

    if measured.exit_code != 0:
        typer.echo(f"probe: the training run failed (exit {measured.exit_code}); the end of its log:", err=True)
        typer.echo(measured.log_tail, err=True)
        return EXIT_RUNTIME
    if measured.peak_gib is None:
        typer.echo("probe: nvidia-smi gave no memory readings during the run")
        return EXIT_RUNTIME
    predicted = est.peak / GIB
    typer.echo(
        f"probe: measured peak {measured.peak_gib:.1f} GiB (nvidia-smi memory.used; {measured.before_gib:.1f} "
        f"GiB in use before), predicted {predicted:.1f} GiB: {100 * (predicted / measured.peak_gib - 1):+.0f}%"
        f" ({measured.samples} readings over {measured.duration_s:.0f} s)"
    )
    return EXIT_OK


def _host_ram_gb() -> float | None:
    """MemTotal from /proc/meminfo (Linux), in GB; None elsewhere."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except (OSError, ValueError, IndexError):
        return None
    return None


def _show(config: str, est, card, vram_gib, advice) -> None:
    from loratrain.fit import cards

    gib = cards.GIB
    a = est.adapter
    by = a.by_component()
    parts = ", ".join(
        f"{label} {by[k][1]}" for k, label in (("unet", "U-Net"), ("te1", "TE1"), ("te2", "TE2")) if by[k][1]
    )
    f = est.facts
    typer.echo(
        f"{config}: {a.module} {a.algo}, {a.params:,} trainable parameters in {len(a.modules):,} modules ({parts})"
    )
    typer.echo(
        f"  batch {f['batch']} x {f['resolution'][0]}x{f['resolution'][1]}, {f['mixed_precision']} mixed "
        f"precision, attention {f['attention']}, gradient checkpointing {'on' if f['gradient_checkpointing'] else 'off'}"
        f", text encoders {'trained' if f['text_encoders_trained'] else 'frozen'}"
    )
    typer.echo("")
    typer.echo(f"  {'training step':28s} {'GiB':>7s}")
    for item in est.items:
        typer.echo(f"  {item.name:28s} {item.bytes / gib:7.2f}  {item.note}")
    typer.echo(f"  {'peak':28s} {est.training_peak / gib:7.2f}")
    if est.sample_items:
        extra = [i for i in est.sample_items if i.name in ("VAE weights", "sampling U-Net working set", "VAE decode")]
        typer.echo(
            f"  sample generation peak       {est.sample_peak / gib:7.2f}  "
            + ", ".join(f"{i.name} {i.bytes / gib:.2f}" for i in extra)
        )
    host = f"  host RAM while loading       {est.host_peak / 1e9:7.1f}  GB per process (fp32 models + Python)"
    total_ram = _host_ram_gb()
    if total_ram:
        need = est.host_peak / 1e9 * est.facts["processes_per_machine"]
        word = "fits" if need <= total_ram * 0.9 else "may be killed by the OS (out of memory)"
        host += f"; {need:.1f} GB of this machine's {total_ram:.1f} GB: {word}"
    typer.echo(host)
    for note in est.notes:
        typer.echo(f"  note: {note}")
    typer.echo("")
    if vram_gib is None:
        typer.echo(f"predicted peak {est.peak / gib:.1f} GiB (no GPU detected: give --gpu NAME or --vram GIB)")
        return
    typer.echo(f"{card}: {cards.verdict(est.peak, vram_gib)}")
    if not advice:
        if not cards.fits(est.peak, vram_gib):
            typer.echo("no change fit knows makes it fit")
        return
    fits_now = cards.fits(est.peak, vram_gib)
    typer.echo("faster, and still fits:" if fits_now else "to make it fit (cheapest first):")
    for n, adv in enumerate(advice, 1):
        speed = f"; {adv.speedup}" if adv.speedup else ""
        typer.echo(f"  {n}. {adv.set_line()}")
        typer.echo(f"       predicted peak {adv.peak / gib:.1f} GiB; {adv.why}{speed}")
