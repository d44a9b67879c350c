"""Terminal rendering of the `plan` and `prompts` reports (rich, on stdout)."""

from __future__ import annotations

import os
from typing import Any

BAR_WIDTH = 20


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def _short(items: list[int], head: int = 6, tail: int = 2) -> str:
    if len(items) <= head + tail:
        return ", ".join(map(str, items))
    return (
        ", ".join(map(str, items[:head]))
        + f", … ({len(items) - head - tail} more) …, "
        + ", ".join(map(str, items[-tail:]))
    )


def show_plan(data: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    mode = {"dataset_config": "dataset_config", "in_json": "in_json metadata, not scanned"}.get(
        data["mode"], "N_name folders"
    )
    from rich import box

    table = Table(title=f"Dataset ({mode})", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col, justify in (
        ("folder", "left"),
        ("repeats", "right"),
        ("images", "right"),
        ("captions", "right"),
        ("missing", "right"),
        ("items/epoch", "right"),
        ("longest caption", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for d in data["datasets"]:
        name = os.path.basename(os.path.normpath(d["dir"])) + (" (reg)" if d["is_reg"] else "")
        longest = d["longest_caption_tokens"]
        table.add_row(
            name,
            str(d["repeats"]),
            str(d["images"]),
            str(d["captions"]),
            str(d["missing_captions"]),
            "" if d["is_reg"] else str(d["readable_images"] * max(d["repeats"], 0)),
            f"{longest} tokens"
            if longest is not None
            else (f"<= {data['caption_token_limit']}" if d["captions"] else ""),
        )
    console.print(table)
    if data["reg_items"]:
        console.print(f"regularisation items per epoch (balanced to the training items): {data['reg_items']}")

    buckets = data["buckets"]
    if buckets:
        console.print()
        console.print("[bold]Buckets[/bold] (items = images x repeats; a bucket's last batch may be partial)")
        peak = max(b["items"] for b in buckets)
        several = len({b["dataset"] for b in buckets}) > 1
        for b in buckets:
            bar = "█" * max(1, round(BAR_WIDTH * b["items"] / peak))
            label = f"{b['width']:>4}x{b['height']:<4}"
            if several:
                label = f"[{b['dataset']}] " + label
            flag = " [yellow]< batch[/yellow]" if b["short"] else ""
            console.print(
                f"  {label} {bar:<{BAR_WIDTH}} {b['images']:>6} img {b['items']:>7} items "
                f"{b['batches']:>5} batches{flag}"
            )

    console.print()
    if not data["total_steps"] and data.get("unscanned"):
        console.print("[bold]Schedule[/bold]: not computed (fine-tuning metadata is not scanned)")
    elif not data["total_steps"]:
        console.print("[bold]Schedule[/bold]: nothing to train")
    else:
        procs, accum = data["num_processes"], data["gradient_accumulation_steps"]
        console.print("[bold]Schedule[/bold]")
        console.print(
            f"  batches per epoch   {data['batches_per_epoch']}"
            + (f" ({data['batches_per_process']} per process x {procs} processes)" if procs > 1 else "")
        )
        console.print(
            f"  steps per epoch     {data['steps_per_epoch']}"
            + (f" (gradient_accumulation_steps {accum})" if accum > 1 else "")
        )
        source = "max_train_epochs" if data["steps_from_epochs"] else "max_train_steps"
        console.print(f"  total               {data['total_steps']} steps, {data['epochs']} epochs (from {source})")
        saves = data["saves"]
        regular = [s for s in saves if s["kind"] != "final"]
        if regular:
            kinds = {s["kind"] for s in regular}
            if kinds == {"epoch"}:
                text = "after epochs " + _short([s["epoch"] for s in regular])
            else:
                text = "at steps " + _short([s["step"] for s in regular])
            console.print(f"  saves               {text}, and the final model at step {data['total_steps']}")
            dropped = sum(1 for s in regular if not s["kept"])
            if dropped:
                console.print(f"                      ({dropped} of them deleted again by save_last_n_*)")
        else:
            console.print(f"  saves               the final model only, at step {data['total_steps']}")
        samples = data["samples"]
        if samples:
            console.print(
                f"  samples             at steps {_short([s['step'] for s in samples])}"
                f" ({len(data['prompts'])} prompt(s) each)"
            )
        else:
            console.print("  samples             none")
    if data["prompts"]:
        console.print()
        show_prompts(data["prompts"], data.get("sample_prompts") or "")


# A prompt file of 200,000 lines must not print 200,000 rows: the rest is summed up (--json lists every one).
MAX_PROMPTS_SHOWN = 200


def show_prompts(prompts: list[dict[str, Any]], path: str) -> None:
    from rich.markup import escape

    console = _console()
    console.print(f"[bold]Sample prompts[/bold] {escape(path)}")
    hidden = prompts[MAX_PROMPTS_SHOWN:]
    for p in prompts[:MAX_PROMPTS_SHOWN]:
        tokens = p["tokens"]
        count = "?" if tokens is None else str(tokens)
        style = "red" if tokens is not None and tokens > 75 else "green"
        where = f"line {p['line']}" if p.get("line") else f"#{p['index'] + 1}"
        flags = " ".join(f"--{k} {v}" for k, v in p["flags"].items() if k != "n")
        text = p["text"] if len(p["text"]) <= 70 else p["text"][:67] + "..."
        console.print(f"  {where:>8}  [{style}]{count:>3}/75 tokens[/{style}]  {escape(text)}")
        extra = []
        if p.get("negative_tokens") is not None:
            extra.append(f"negative {p['negative_tokens']}/75 tokens")
        if flags:
            extra.append(flags)
        if extra:
            console.print(" " * 12 + "  ".join(extra), markup=False)
    if hidden:
        long = sum(1 for p in hidden if p["tokens"] is not None and p["tokens"] > 75)
        console.print(f"  ... and {len(hidden)} more prompt(s), {long} of them over 75 tokens (--json lists every one)")
