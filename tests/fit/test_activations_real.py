"""fit's saved-activation figures agree with what autograd saves when the REAL adapter trains the REAL U-Net.

The shipped per-block data was measured with every U-Net weight trainable; fit adds the adapter's own saved
tensors from the layer table. Here sd-scripts' SDXL U-Net is built on the meta device, frozen, the real
LyCORIS LoCon / networks.lora adapter is applied, and a batch-1 512x512 forward is counted with the same
saved-tensor hooks the generator uses (make_sdxl_fit_data.py). fit's un-calibrated figure (allocator and
backward factors set to 1 and 0) must match: that is the part of the model derived from the architecture.

Needs torch, lycoris_lora, einops and sd-scripts' source (the sd_scripts_source fixture); skips without them.
"""

from __future__ import annotations

import sys
import types

import pytest
from helpers import load_fit_generator

torch = pytest.importorskip("torch")
pytest.importorskip("lycoris.kohya")
pytest.importorskip("einops")
pytest.importorskip("transformers")  # networks/lora.py imports it

import loratrain.fit.model as fit_model  # noqa: E402
from loratrain.effective import Effective  # noqa: E402


@pytest.fixture(scope="module")
def measure(sd_scripts_source):
    # The stand-in diffusers must not outlive this module: other tests import the real one.
    with pytest.MonkeyPatch.context() as mp:
        yield from _measure(sd_scripts_source, mp)


def _measure(sd_scripts_source, mp):
    root = sd_scripts_source
    gen = load_fit_generator()
    sdxl_original_unet = gen.import_sds(str(root))
    if "diffusers" not in sys.modules:
        mp.setitem(
            sys.modules, "diffusers", types.SimpleNamespace(AutoencoderKL=object)
        )  # a type hint in networks.lora
    import lycoris.kohya as lycoris_kohya
    from networks import lora as networks_lora

    fused = gen.fused_attention_standin(torch)
    original_sdpa = torch.nn.functional.scaled_dot_product_attention

    def run(module: str, dim: int, network_args: dict, gc: bool) -> float:
        torch.nn.functional.scaled_dot_product_attention = lambda q, k, v, *a, **kw: fused.apply(q, k, v, "bhnd")
        old_dtype = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16)
        try:
            with torch.device("meta"):
                unet = sdxl_original_unet.SdxlUNet2DConditionModel()
                if module == "networks.lora":
                    networks_lora.LoRANetwork.UNET_TARGET_REPLACE_MODULE = ["Transformer2DModel"]
                    net = networks_lora.create_network(1.0, dim, 4.0, None, [], unet, **network_args)
                else:
                    net = lycoris_kohya.create_network(1.0, dim, 4.0, None, [], unet, **network_args)
            net.apply_to([], unet, False, True)
            unet.set_use_sdpa(True)
            unet.requires_grad_(False)
            for p in net.parameters():
                p.requires_grad_(True)
            if gc:
                unet.enable_gradient_checkpointing()
            unet.train()
            counter = gen.SavedCounter(torch, unet)
            counter.param_storages |= {p.untyped_storage()._cdata for p in net.parameters()}
            with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
                unet(
                    torch.empty(1, 4, 64, 64, device="meta"),
                    torch.zeros(1, dtype=torch.long, device="meta"),
                    torch.empty(1, 77, 2048, device="meta"),
                    torch.empty(1, 2816, device="meta"),
                )
            return counter.total
        finally:
            torch.set_default_dtype(old_dtype)
            torch.nn.functional.scaled_dot_product_attention = original_sdpa

    yield run


def predicted(monkeypatch, args: dict) -> float:
    monkeypatch.setattr(fit_model, "ALLOC", 1.0)
    monkeypatch.setattr(fit_model, "BACKWARD", 0.0)
    est = fit_model.estimate(
        Effective.from_args(
            {
                "network_train_unet_only": True,
                "resolution": "512,512",
                "train_batch_size": 1,
                "mixed_precision": "bf16",
                "sdpa": True,
                "cache_latents": True,
                **args,
            }
        )
    )
    return sum(i.bytes for i in est.items if i.name in ("U-Net activations", "adapter activations"))


@pytest.mark.parametrize("gc,tolerance", [(False, 0.03), (True, 0.10)], ids=["full", "checkpointing"])
def test_lycoris_locon_saves_what_fit_predicts(measure, monkeypatch, gc, tolerance):
    real = measure("lycoris.kohya", 8, {"algo": "locon", "preset": "full", "conv_dim": "16", "conv_alpha": "4"}, gc)
    guess = predicted(
        monkeypatch,
        {
            "network_module": "lycoris.kohya",
            "network_dim": 8,
            "network_alpha": 4.0,
            "network_args": ["algo=locon", "preset=full", "conv_dim=16", "conv_alpha=4"],
            "gradient_checkpointing": gc,
        },
    )
    assert abs(guess / real - 1) < tolerance, (guess / 2**20, real / 2**20)


def test_networks_lora_saves_what_fit_predicts(measure, monkeypatch):
    real = measure("networks.lora", 32, {}, False)
    guess = predicted(monkeypatch, {"network_module": "networks.lora", "network_dim": 32, "network_alpha": 4.0})
    assert abs(guess / real - 1) < 0.05, (guess / 2**20, real / 2**20)
