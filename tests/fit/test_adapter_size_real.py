"""fit's torch-free adapter counts equal what networks.lora and LyCORIS 4.1.3 really create.

The real SDXL U-Net (sd-scripts' library/sdxl_original_unet.py) and transformers' CLIP text models are built
on the meta device, the real create_network of networks.lora / lycoris.kohya makes the adapter from the same
network_args loratrain renders, apply_to() applies the text-encoder / U-Net switches as train_network.py does,
and the parameters of the modules it keeps are counted.

Needs torch, lycoris_lora, transformers and an sd-scripts source tree (the sd_scripts_source fixture:
LORATRAIN_TEST_SD_SCRIPTS or a local mirror); skips without them, as in CI. test_lycoris_layer_table.py checks
the LyCORIS counts without sd-scripts, on a skeleton rebuilt from the layer table.
"""

from __future__ import annotations

import sys
import types

import pytest
from helpers import ADAPTER_VARIANTS, CONFIGS, build_train_network_adapter, load_fit_generator

torch = pytest.importorskip("torch")
pytest.importorskip("lycoris.kohya")
transformers = pytest.importorskip("transformers")

from loratrain.config.loader import load_config  # noqa: E402
from loratrain.fit.adapter_size import adapter_size, sdxl_data  # noqa: E402

GEN = load_fit_generator()  # the text encoders' architecture is stated once, in the generator


@pytest.fixture(scope="module")
def sdxl(sd_scripts_source):
    # Stand-ins (library.utils, diffusers) and sd-scripts' folder on sys.path must not outlive this module.
    with pytest.MonkeyPatch.context() as mp:
        yield _sdxl(sd_scripts_source, mp)


def _sdxl(sd_scripts_source, mp):
    mp.syspath_prepend(str(sd_scripts_source))
    # networks/lora.py and the U-Net module import library.utils only for setup_logging, and diffusers only for
    # a type hint; library.utils itself pulls torchvision and cv2, which this environment does not need.
    try:
        import library.utils  # noqa: F401
    except ImportError:
        stub = types.ModuleType("library.utils")
        stub.setup_logging = lambda *a, **k: None
        mp.setitem(sys.modules, "library.utils", stub)
    try:
        import diffusers  # noqa: F401
    except ImportError:
        mp.setitem(sys.modules, "diffusers", types.SimpleNamespace(AutoencoderKL=object))
    import lycoris.kohya as lycoris_kohya
    from library import sdxl_original_unet
    from networks import lora as networks_lora

    with torch.device("meta"):
        unet = sdxl_original_unet.SdxlUNet2DConditionModel()
        te1 = transformers.CLIPTextModel(transformers.CLIPTextConfig(**GEN.TE_COMMON, **GEN.TE_ARCH["te1"]))
        te2 = transformers.CLIPTextModelWithProjection(
            transformers.CLIPTextConfig(**GEN.TE_COMMON, **GEN.TE_ARCH["te2"])
        )
    return {"unet": unet, "te": [te1, te2], "modules": {"networks.lora": networks_lora, "lycoris.kohya": lycoris_kohya}}


def real_count(sdxl, args: dict) -> tuple[int, int, dict]:
    """Build the adapter with the real package the way train_network.py does; (params, modules, by prefix)."""
    module = sdxl["modules"][args.get("network_module") or "networks.lora"]
    if module is sdxl["modules"]["networks.lora"]:
        # LoRANetwork extends its class-level target list in place when conv_dim is set (`+=` on a class
        # attribute); a training process creates one network, so each count here starts from the pristine list.
        module.LoRANetwork.UNET_TARGET_REPLACE_MODULE = ["Transformer2DModel"]
    kwargs = {}
    for item in args.get("network_args") or []:
        key, value = item.split("=")
        kwargs[key] = value

    net = build_train_network_adapter(module, args, kwargs, sdxl["te"], sdxl["unet"])
    loras = net.text_encoder_loras + net.unet_loras
    by = {}
    for lora in loras:
        prefix = lora.lora_name.split("_")[1]
        n = sum(p.numel() for p in lora.parameters() if p.requires_grad)
        p, c = by.get(prefix, (0, 0))
        by[prefix] = (p + n, c + 1)
    return sum(v[0] for v in by.values()), len(loras), by


def assert_same(sdxl, args):
    predicted = adapter_size(args)
    params, modules, by = real_count(sdxl, args)
    assert (predicted.params, len(predicted.modules)) == (params, modules), by
    return predicted


def test_the_model_table_is_sd_scripts_sdxl(sdxl):
    counts = {
        "unet": sum(p.numel() for p in sdxl["unet"].parameters()),
        "te1": sum(p.numel() for p in sdxl["te"][0].parameters()),
        "te2": sum(p.numel() for p in sdxl["te"][1].parameters()),
    }
    assert counts == {k: v for k, v in sdxl_data()["params"].items() if k in counts}


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.toml")))
def test_every_shipped_config_counts_what_the_real_package_creates(sdxl, name):
    assert_same(sdxl, load_config(str(CONFIGS / f"{name}.toml"), []).config.script_args())


def test_the_guides_pony_locon_has_the_issues_measured_size(sdxl):
    args = load_config(str(CONFIGS / "pony-sdxl-locon.toml"), []).config.script_args()
    predicted = assert_same(sdxl, args)
    assert (predicted.params, len(predicted.modules)) == (120_067_584, 1_052)


@pytest.mark.parametrize("name", list(ADAPTER_VARIANTS))
def test_each_algorithm_variant_counts_what_the_real_package_creates(sdxl, name):
    assert_same(sdxl, ADAPTER_VARIANTS[name])
