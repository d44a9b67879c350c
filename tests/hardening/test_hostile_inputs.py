"""The hostile-input generator over every verb: no traceback, no hang, the right exit code, nothing touched.

The cases come from tests/hardening/hostile.py (a mutator over the shipped configs plus families for --set,
dataset trees and configs, prompt files, import sources, LoRA files, slurm options). CI runs a fixed,
deterministic sample of each class, bounded to well under two minutes; benchmarks/hardening_soak.py runs
them all (and more hypothesis examples). Each failure names the case and what broke.
"""

from __future__ import annotations

from pathlib import Path

import hostile  # the generator next to this file (pytest puts its folder on sys.path)
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Every n-th case of the big mutator families in CI; every case of the small hand-written ones.
CI_STRIDE = {1: 4, 2: 6, 5: 3, 6: 3, 12: 2, 14: 2}
CLASSES = sorted({case.cls for case in hostile.all_cases()})


def ci_cases(cls: int) -> list[hostile.Case]:
    cases = [c for c in hostile.all_cases() if c.cls == cls]
    stride = CI_STRIDE.get(cls, 1)
    return [c for i, c in enumerate(cases) if i % stride == 0 or c.always]


@pytest.mark.parametrize("cls", CLASSES)
def test_every_case_of_the_class_is_handled(cls, tmp_path):
    stats = hostile.survey(ci_cases(cls), tmp_path)
    failed = stats[cls]["failed"]
    assert not failed, "\n".join(f"{name}: {found}\n  output: {out[-300:]!r}" for name, found, out in failed[:10])


SET_ALPHABET = st.sampled_from(list("=.[]{}\"'\\ ,\x00\x1b\n") + ["inf", "nan", "1e400", "network", "dim", "a"])


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.lists(SET_ALPHABET, max_size=12).map("".join), depth=st.integers(0, 400))
def test_any_set_string_is_a_value_or_a_clear_refusal(text, depth, tmp_path_factory):
    """`--set` with any mix of quotes, brackets, NULs, escapes and nesting: exit 0 or 2, never a traceback."""
    value = "[" * depth + text + "]" * depth
    case = hostile.config_case(
        8,
        "hypothesis --set",
        hostile.base_config,
        "check",
        hostile.EITHER,
        sets=(f"network.network_args.x={value}", f"saving.output_name={text}"),
    )
    outcome = hostile.run_case(case, tmp_path_factory.mktemp("set"))
    assert not outcome.failures(case), (text, depth, outcome.failures(case), outcome.output[-300:])


PROMPT_WORDS = st.sampled_from(
    [
        "a cat",
        "--n",
        "--w",
        "--h",
        "--l",
        "--s",
        "--d",
        "inf",
        "nan",
        "1e400",
        "-1",
        "99999999999999999999",
        "\x00",
        "\x1b",
        "\t",
        "#",
        "\ufeff",
        "--ss",
        "k_euler",
    ]
)


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(lines=st.lists(st.lists(PROMPT_WORDS, max_size=8).map(" ".join), max_size=6))
def test_any_prompt_line_is_read_or_refused(lines, tmp_path_factory):
    folder = tmp_path_factory.mktemp("prompts")

    def build(f: Path) -> list[str]:
        (f / "p.txt").write_text("\n".join(lines), encoding="utf-8")
        return ["prompts", str(f / "p.txt")]

    case = hostile.Case(10, "hypothesis prompt lines", build, hostile.EITHER)
    outcome = hostile.run_case(case, folder)
    assert not outcome.failures(case), (lines, outcome.failures(case), outcome.output[-300:])
