"""The real lycoris package (4.1.3) accepts the network_args loratrain renders, parsed as sd-scripts passes them."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
kohya = pytest.importorskip("lycoris.kohya")
from helpers import BASE, tomllib  # noqa: E402
from torch import nn  # noqa: E402

from loratrain.config.loader import validate  # noqa: E402
from loratrain.schema.choices import LYCORIS_ALGOS, LYCORIS_PRESETS  # noqa: E402

C = 32  # channels of the tiny stand-in UNet


# Class names matter: LyCORIS presets pick layers by the class names of sd-scripts' SDXL UNet and HF CLIP.
class CrossAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.to_q, self.to_k, self.to_v = nn.Linear(C, C), nn.Linear(C, C), nn.Linear(C, C)
        self.to_out = nn.ModuleList([nn.Linear(C, C)])


class Transformer2DModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj_in = nn.Linear(C, C)
        self.attn1 = CrossAttention()
        self.proj_out = nn.Linear(C, C)


class ResnetBlock2D(nn.Module):
    def __init__(self):
        super().__init__()
        self.in_layers = nn.Sequential(nn.GroupNorm(8, C), nn.SiLU(), nn.Conv2d(C, C, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(C, C))
        self.skip_connection = nn.Conv2d(C, C, 1)


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_blocks = nn.ModuleList([nn.Sequential(ResnetBlock2D(), Transformer2DModel())])


class CLIPAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(C, C) for _ in range(4))


class CLIPMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(C, 2 * C), nn.Linear(2 * C, C)


class CLIPEncoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn, self.mlp = CLIPAttention(), CLIPMLP()


class TextEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.text_model = nn.Module()
        self.text_model.encoder = nn.Module()
        self.text_model.encoder.layers = nn.ModuleList([CLIPEncoderLayer()])


def rendered_kwargs(network_args: str, dim: int = 8) -> tuple[int, float, dict]:
    """Validate a config, render it, and split network_args the way train_network.py does."""
    text = BASE.replace('"networks.lora"', '"lycoris.kohya"').replace(
        "network_dim = 8", f"network_dim = {dim}\nnetwork_alpha = 4.0"
    )
    data = tomllib.loads(text + "[network.network_args]\n" + network_args)
    cfg = validate(data, "t.toml").config
    items = cfg.script_args()["network_args"]
    kwargs = dict(item.split("=", 1) for item in items)
    kwargs.setdefault("dropout", None)  # sd-scripts fills it from --network_dropout
    return cfg.network.network_dim, cfg.network.network_alpha, kwargs


def build(network_args: str, dim: int = 8):
    dim, alpha, kwargs = rendered_kwargs(network_args, dim)
    unet, encoders = UNet(), [TextEncoder(), TextEncoder()]
    net = kohya.create_network(1.0, dim, alpha, None, encoders, unet, neuron_dropout=None, **kwargs)
    return net, kwargs


def module_count(net) -> int:
    return len(getattr(net, "unet_loras", [])) + len(getattr(net, "text_encoder_loras", []))


def param_names(net) -> list[str]:
    return [f"{m.lora_name}.{n}" for m in net.unet_loras + net.text_encoder_loras for n, _ in m.named_parameters()]


ALGO_ARGS = {"dylora": "block_size = 4\n", "lokr": "factor = 4\n"}


@pytest.mark.parametrize("algo", LYCORIS_ALGOS)
def test_lycoris_builds_every_algo_from_rendered_args(algo):
    net, _ = build(
        f'algo = "{algo}"\npreset = "full"\nconv_dim = 4\nconv_alpha = 1.0\n' + ALGO_ARGS.get(algo, ""), dim=4
    )
    assert module_count(net) > 0


@pytest.mark.parametrize("preset", [p for p in LYCORIS_PRESETS if p != "ia3"])
def test_lycoris_accepts_every_preset_loratrain_allows(preset):
    net, _ = build(f'algo = "locon"\npreset = "{preset}"\n')
    assert module_count(net) >= 0  # accepted: no AssertionError from an unknown preset


def test_rendered_false_keeps_tucker_and_scalar_off():
    net, kwargs = build('algo = "locon"\npreset = "full"\nconv_dim = 4\nuse_tucker = false\nuse_scalar = false\n')
    assert kwargs["use_tucker"] == "False"
    names = param_names(net)
    assert names and not any("lora_mid" in n for n in names)


def test_rendered_true_turns_tucker_on_for_3x3_convs():
    net, _ = build('algo = "locon"\npreset = "full"\nconv_dim = 4\nuse_tucker = true\n')
    assert any("in_layers" in n and "lora_mid" in n for n in param_names(net))


def test_decompose_both_false_is_left_out_so_lycoris_keeps_it_off():
    _, _, kwargs = rendered_kwargs('algo = "lokr"\ndecompose_both = false\n')
    assert "decompose_both" not in kwargs
    _, _, kwargs = rendered_kwargs('algo = "lokr"\ndecompose_both = true\n')
    assert kwargs["decompose_both"] == "True"


def test_guide_conv_settings_reach_the_3x3_convs():
    net, _ = build('algo = "locon"\npreset = "full"\nconv_dim = 16\nconv_alpha = 4.0\n')
    conv = [m for m in net.unet_loras if "in_layers" in m.lora_name]
    assert conv and conv[0].lora_dim == 16
