"""Property: every sample file name sd-scripts can write parses back to what it was written from."""

from __future__ import annotations

import datetime as dt

import helpers as synth
from hypothesis import given
from hypothesis import strategies as st

from loratrain.report.samples import parse_name

names = st.one_of(
    st.none(),
    st.text(
        st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="_-."), min_size=1, max_size=30
    ),
)
stamps = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


@given(
    name=names,
    epoch=st.booleans(),
    number=st.integers(0, 10**8),
    index=st.integers(0, 999),
    stamp=stamps,
    seed=st.one_of(st.none(), st.integers(0, 2**32)),
)
def test_sample_name_round_trip(name, epoch, number, index, stamp, seed):
    kw = {"epoch": number} if epoch else {"step": number}
    fname = synth.sample_name(name, index=index, stamp=stamp, seed=seed, **kw)
    s = parse_name(fname, name)
    assert s is not None, fname
    assert (s.name, s.kind, s.number, s.index, s.stamp, s.seed) == (
        name,
        "epoch" if epoch else "step",
        number,
        index,
        stamp,
        seed,
    )
