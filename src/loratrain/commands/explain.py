"""`loratrain explain`: document any flag or config key."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command(
        "explain",
        context_settings={"ignore_unknown_options": True},
        help="Explain a flag or key: what it does, type, default, allowed values, related keys, the guide's advice, "
        "a TOML example and the rendered flag. NAME may be network_dim, --network_dim, network.network_dim, "
        "network_args.algo or accelerate.num_processes.",
    )
    def explain(
        name: str = typer.Argument(None, help="Flag or key to explain."),
        flag: str = typer.Option(None, "--flag", help="Flag or key to explain (same as NAME)."),
        list_all: bool = typer.Option(False, "--list", help="List every flag and key by table."),
        as_json: bool = typer.Option(False, "--json", help="Print the entries as JSON."),
        optimizer: str = typer.Option(
            None,
            "--optimizer",
            help="Document optimizer_args keys for this optimizer_type only (types and defaults of its constructor).",
        ),
        config: str = typer.Option(None, "--config", help="Take --optimizer from this config's optimizer_type."),
    ) -> int:
        from loratrain.commands._output import print_json
        from loratrain.errors import UsageError
        from loratrain.explain import build_index, lookup, optimizer_of

        if config and not optimizer:
            optimizer = optimizer_of(config)
        index = build_index(optimizer)
        if list_all:
            if as_json:
                print_json([e.as_dict() for e in index.values()])
                return 0
            _print_list(index)
            return 0
        wanted = flag or name
        if not wanted:
            raise UsageError("give a flag name (e.g. `loratrain explain network_dim`) or --list")
        if optimizer:
            from loratrain.explain import check_optimizer_arg

            check_optimizer_arg(wanted, optimizer)
        entries = lookup(wanted, index)
        if as_json:
            print_json([e.as_dict() for e in entries])
            return 0
        for i, entry in enumerate(entries):
            if i:
                typer.echo("")
            _print_entry(entry)
        return 0


def _first_sentence(text: str) -> str:
    head = text.split(". ")[0].rstrip(".")
    return head if len(head) < 100 else head[:97] + "..."


def _print_list(index) -> None:
    current = None
    for entry in index.values():
        section = entry.key.rsplit(".", 1)[0] if "." in entry.key else "(top level)"
        if section != current:
            typer.echo(f"\n[{section}]")
            current = section
        typer.echo(f"  {entry.name:<38} {_first_sentence(entry.description)}")


def _print_entry(e) -> None:
    typer.echo(f"{e.key}")
    typer.echo(f"  {e.description}")
    typer.echo(f"  type:      {e.type}")
    typer.echo(f"  default:   {e.default}")
    if e.allowed:
        typer.echo(f"  allowed:   {', '.join(e.allowed)}")
    if e.interacts:
        typer.echo(f"  see also:  {', '.join(e.interacts)}")
    if e.advice:
        typer.echo(f"  guide:     {e.advice}")
    for note in e.notes:
        typer.echo(f"  note:      {note}")
    if e.toml:
        typer.echo("  in the config:")
        for line in e.toml.splitlines():
            typer.echo(f"    {line}")
    if e.rendered:
        typer.echo(f"  rendered:  {e.rendered}")
