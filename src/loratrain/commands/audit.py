"""`loratrain audit CONFIG`: every image, caption and latent cache of the datasets the config trains, checked
for what silently ruins a LoRA, before the GPU spends hours on it."""

from __future__ import annotations

from typing import Optional

import typer

from loratrain.commands._config import STRICT_HELP, SetOption
from loratrain.errors import EXIT_CONFIG, EXIT_OK

SHOWN_PER_KIND = 5


def register(app: typer.Typer) -> None:
    @app.command(
        "audit",
        help="Decode every training image as sd-scripts does and check images, duplicates, captions and latent "
        "caches. Exit 2 when something breaks or silently corrupts training; warnings otherwise.",
    )
    def audit(
        config: str = typer.Argument(..., help="The run's TOML file."),
        set_: Optional[list[str]] = SetOption,
        as_json: bool = typer.Option(False, "--json", help="Print {ok, findings, ...} as JSON on stdout."),
        html: Optional[str] = typer.Option(
            None, "--html", metavar="DIR", help="Write DIR/audit.html: a thumbnail of every flagged image."
        ),
        fix_cache: bool = typer.Option(
            False,
            "--fix-cache",
            help="Delete the cache files sd-scripts would wrongly reuse (each is listed); never an image or a caption.",
        ),
        strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
        trigger: Optional[str] = typer.Option(
            None,
            "--trigger",
            metavar="WORD",
            help="The trigger word (default: the folder's class tokens, else the most common first tag).",
        ),  # fmt: skip
        no_memory: bool = typer.Option(
            False, "--no-cache", help="Decode every image again instead of reusing the last audit's results."
        ),
    ) -> int:
        from loratrain.errors import ConfigError

        try:
            return _audit(config, set_, as_json, html, fix_cache, strict, trigger, not no_memory)
        except ConfigError as exc:
            if not as_json:
                raise
            from loratrain.commands._output import print_json

            print_json({"ok": False, "problems": [p.as_dict() for p in exc.problems]})
            return EXIT_CONFIG


def _audit(config, set_, as_json, html, fix_cache, strict, trigger, remember) -> int:
    from loratrain.commands._config import load
    from loratrain.commands._output import print_json, print_problems
    from loratrain.commands.plan import _ProgressBar
    from loratrain.errors import ConfigError, Problem

    loaded = load(config, set_, strict, quiet=as_json)
    args = loaded.config.script_args()
    try:
        from loratrain.audit.build import run_audit
        from loratrain.audit.images import require_pillow

        require_pillow()
    except ImportError as exc:
        raise ConfigError([Problem(str(exc), key="audit", fix="pip install 'loratrain[audit]'")]) from None
    with _ProgressBar() as bar:
        result = run_audit(
            args, trigger=trigger, progress=bar.update, fix_cache=fix_cache, remember=remember, config_file=config
        )
    if html:
        from pathlib import Path

        from loratrain.audit import html as page

        written = page.write(result, Path(html), config_file=config)
    failing = result.errors + (result.warnings if strict else [])
    if as_json:
        data = result.as_dict()
        data["ok"] = not failing
        data["problems"] = [
            {"file": f.file, "line": None, "key": f.kind, "severity": "error", "message": f.message, "fix": f.fix}
            for f in failing
        ]
        data["config_warnings"] = [p.as_dict() for p in result.problems]
        if html:
            data["html"] = str(written)
        print_json(data)
    else:
        print_problems(result.problems)
        _show(result, strict)
        if html:
            typer.echo(f"page: {written}")
    return EXIT_CONFIG if failing else EXIT_OK


def _show(result, strict: bool) -> None:
    from rich.console import Console
    from rich.markup import escape

    from loratrain.audit.findings import KINDS

    console = Console(highlight=False, soft_wrap=True)
    data = result.as_dict()
    remembered = result.images - result.decoded
    console.print(
        f"[bold]{result.images} images[/bold] in {len(result.folders)} folder(s) audited"
        + (f" ({remembered} unchanged since the last audit)" if remembered else "")
    )
    for folder in result.folders:
        if folder["is_reg"] or not folder["captions"]:
            continue
        trigger = f"trigger {folder['trigger']!r} ({folder['trigger_source']})" if folder["trigger"] else "no trigger"
        tags = ", ".join(f"{t['tag']} {t['count']}" for t in folder["top_tags"][:5])
        console.print(
            f"  {escape(folder['folder'])}: {folder['captions']} captions, {escape(trigger)}; top tags: {escape(tags)}"
        )
    by_kind: dict[str, list] = {}
    for f in result.findings:
        by_kind.setdefault(f.kind, []).append(f)
    for entry in data["by_kind"]:
        kind = entry["kind"]
        severity = entry["severity"] if not strict else "error"
        style = "red" if severity == "error" else "yellow"
        console.print(f"[{style}]{severity:7}[/{style}] {kind:24} {entry['count']:6}  {escape(KINDS[kind][1])}")
        shown = by_kind[kind][:SHOWN_PER_KIND]
        for f in shown:
            fix = f" ({f.fix})" if f.fix else ""
            console.print(f"          {escape(f.file)}: {escape(f.message)}{escape(fix)}")
        more = entry["count"] - len(shown)
        if more:
            console.print(f"          ... and {more} more (--json or --html for all)")
    if data["worst_files"] and len(result.findings) > SHOWN_PER_KIND:
        console.print("[bold]worst files[/bold]")
        for w in data["worst_files"]:
            console.print(f"  {escape(w['file'])}: {w['errors']} error(s), {w['warnings']} warning(s)")
    for path in result.deleted:
        console.print(f"deleted stale cache: {escape(path)}")
    errors, warnings = len(result.errors), len(result.warnings)
    if not result.findings:
        console.print("[green]no problems found[/green]")
    else:
        verdict = (
            "sd-scripts would fail or train damaged data"
            if errors or (strict and warnings)
            else "training would run; check the warnings"
        )
        console.print(f"{errors} error(s), {warnings} warning(s): {verdict}")
