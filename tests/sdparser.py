"""An argparse parser with sd-scripts' own argument definitions, rebuilt from the flag table.

Stands in for sdxl_train_network.py's parser (which needs sd-scripts and torch to import): same option
names, actions, nargs, types and choices, and argparse's default prefix matching.
"""

from __future__ import annotations

import argparse

from loratrain.sdscripts import flags


def _int_or_float(text: str):
    return flags.parse_int_or_float(text)


TYPES = {"int": int, "float": float, "str": str, "Path": str, "int_or_float": _int_or_float}


class _Fail(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # raise instead of exiting, so tests can assert on it
        raise _Fail(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(add_help=False)
    for spec in flags.all_flags().values():
        if spec.kind == "store_true":
            parser.add_argument(*spec.option_strings, dest=spec.dest, action="store_true")
            continue
        kwargs = {"dest": spec.dest, "type": TYPES[spec.type], "default": spec.default}
        if spec.kind == "list":
            kwargs["nargs"] = "*"
        if spec.choices:
            kwargs["choices"] = list(spec.choices)
        parser.add_argument(*spec.option_strings, **kwargs)
    return parser


def parse(argv: list[str]) -> dict:
    """Non-default values of a script argv, as sd-scripts' parser would hold them."""
    parser = build_parser()
    ns = vars(parser.parse_args(argv))
    defaults = vars(parser.parse_args([]))
    return {k: v for k, v in ns.items() if v != defaults[k]}


ParseError = _Fail
