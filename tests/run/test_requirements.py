"""launch/requirements.py: one requirement of sd-scripts' requirements.txt against the probe's answer for it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loratrain.launch.requirements import Requirement, judge, release, same_minor, use_of

PY = "/venv/bin/python"


def answer(module_found=True, versions=None, providers=None, imported=None) -> dict:
    out = {"module_found": module_found, "versions": versions or {}, "providers": providers or {}}
    if imported is not None:
        out["import"] = imported
    return out


@pytest.mark.parametrize(
    "have, pin, status",
    [
        ("2.1.2+cu118", "2.1.2", "ok"),  # a CUDA build's local tag
        ("0.4.5+cu130", "0.4.5", "ok"),
        ("0.4.6", "0.4.5", "ok"),  # a newer patch
        ("0.5.0", "0.4.5", "warning"),  # a newer minor: drift, never an error
        ("0.3.1", "0.4.5", "warning"),
        ("1.0.0rc1", "0.4.5", "warning"),
    ],
)
def test_versions_are_compared_by_release(have, pin, status):
    verdict = judge(Requirement("safetensors", pin, ""), answer(versions={"safetensors": have}), PY)
    assert verdict.status == status, verdict


def test_another_distribution_that_provides_the_module_meets_the_requirement():
    req = Requirement("opencv-python", "4.10.0.84", "")
    found = answer(
        versions={"opencv-python": None, "opencv-python-headless": "4.10.0.84"},
        providers={"opencv-python-headless": "4.10.0.84"},
        imported={"ok": True},
    )
    verdict = judge(req, found, PY)
    assert verdict.status == "ok" and verdict.detail == "cv2 from opencv-python-headless 4.10.0.84"


def test_a_provider_found_only_through_its_files_counts():
    """A distribution loratrain's table does not name (a rolling OpenCV build) still provides cv2."""
    req = Requirement("opencv-python", "4.10.0.84", "")
    verdict = judge(req, answer(providers={"opencv-python-rolling": "4.11.0.20250124"}, imported={"ok": True}), PY)
    assert verdict.status == "warning" and "(as opencv-python-rolling)" in verdict.message


def test_missing_opencv_is_fixed_with_the_headless_build_at_the_pin():
    verdict = judge(Requirement("opencv-python", "4.10.0.84", ""), answer(module_found=False), PY)
    assert verdict.status == "error"
    assert verdict.fix == f"{PY} -m pip install opencv-python-headless==4.10.0.84"


def test_an_optional_or_unused_requirement_is_never_an_error():
    assert judge(Requirement("prodigyopt", "1.1.2", ""), answer(module_found=False), PY).status == "skipped"
    assert judge(Requirement("rich", "14.1.0", ""), answer(module_found=False), PY).status == "skipped"
    unknown = judge(Requirement("some-new-dep", "1.0", ""), answer(module_found=False), PY)
    assert unknown.status == "warning" and unknown.fix == f"{PY} -m pip install some-new-dep==1.0"


def test_the_module_of_each_known_requirement():
    assert use_of("opencv-python").module == "cv2"
    assert use_of("huggingface_hub").module == "huggingface_hub"
    assert use_of("Huggingface-Hub").module == "huggingface_hub"
    assert use_of("imagesize").role == "start"


@given(st.text(max_size=20), st.text(max_size=20))
def test_release_never_raises(a, b):
    assert isinstance(release(a), tuple)
    assert same_minor(a, b) in (True, False)
