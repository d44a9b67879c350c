"""fit's torch-free LyCORIS counts equal what the REAL lycoris.kohya creates, without sd-scripts' source.

sd-scripts' U-Net cannot be built here (CI reaches no GitHub), but LyCORIS picks and shapes its modules only from
the model's module tree: class names of the containers (Transformer2DModel, ResnetBlock2D, CLIPAttention, ...),
module names, and the type and shape of each Linear / Conv2d / norm layer. The shipped layer table
(data/fit/sdxl_layers.json) holds exactly that, so a skeleton of the three SDXL models is rebuilt from it on the
meta device (containers as empty modules carrying the recorded class name, real torch.nn layers with the recorded
shapes), the real lycoris.kohya.create_network / apply_to run on it the way train_network.py calls them, and every
adapted module's name and trainable-parameter count is compared with fit/adapter_size. tests/fit/
test_adapter_size_real.py does the same on sd-scripts' real U-Net where its source is available, which also
proves the table itself.
"""

from __future__ import annotations

import pytest
from helpers import ADAPTER_VARIANTS, CONFIGS, build_train_network_adapter

torch = pytest.importorskip("torch")
lycoris_kohya = pytest.importorskip("lycoris.kohya")
from torch import nn  # noqa: E402

from loratrain.config.loader import load_config  # noqa: E402
from loratrain.fit.adapter_size import COMPONENTS, PREFIX, adapter_size, sdxl_data  # noqa: E402

ROOT_CLASS = {"unet": "SdxlUNet2DConditionModel", "te1": "CLIPTextModel", "te2": "CLIPTextModelWithProjection"}
LYCORIS_CONFIGS = sorted(
    p.stem for p in CONFIGS.glob("*.toml") if 'network_module = "lycoris.kohya"' in p.read_text(encoding="utf-8")
)


def _named(base: type[nn.Module], name: str, cache: dict[str, type]) -> type:
    """`base` itself, or a subclass carrying the recorded class name (LyCORIS matches targets by class name)."""
    if base.__name__ == name:
        return base
    if name not in cache:
        cache[name] = type(name, (base,), {})
    return cache[name]


def _skeleton(rows: list[list], root_class: str) -> nn.Module:
    classes: dict[str, type] = {}
    root = _named(nn.Module, root_class, classes)()
    made: dict[str, nn.Module] = {"": root}
    for row in rows:  # rows are in named_modules() order: every parent comes before its children
        name, cls = row[0], row[1]
        kind = row[2] if len(row) > 2 else ""
        if kind == "linear":
            _, _, _, i, o, _, _, _, _ = row
            module = _named(nn.Linear, cls, classes)(i, o)
        elif kind == "conv2d":
            _, _, _, i, o, kh, kw, groups, _ = row
            module = _named(nn.Conv2d, cls, classes)(i, o, (kh, kw), groups=groups)
        elif kind == "groupnorm":
            module = _named(nn.GroupNorm, cls, classes)(1, row[3], affine=bool(row[4]))
        elif kind == "layernorm":
            module = _named(nn.LayerNorm, cls, classes)(row[3], bias=bool(row[4]))
        else:  # containers and parameter-free leaves (SiLU, Identity, ...); embeddings' weights are never adapted
            module = _named(nn.Module, cls, classes)()
        parent, _, child = name.rpartition(".")
        made[parent].add_module(child, module)
        made[name] = module
    return root


@pytest.fixture(scope="module")
def models():
    table = sdxl_data()["modules"]
    with torch.device("meta"):
        built = {comp: _skeleton(table[comp], ROOT_CLASS[comp]) for comp in COMPONENTS}
    return {"unet": built["unet"], "te": [built["te1"], built["te2"]]}


def real_modules(models, args: dict) -> dict[str, int]:
    """lycoris.kohya's adapter for these script args, as train_network.py builds it: {lora name: trainable params}."""
    assert args["network_module"] == "lycoris.kohya"
    kwargs = dict(item.split("=", 1) for item in args.get("network_args") or [])

    net = build_train_network_adapter(lycoris_kohya, args, kwargs, models["te"], models["unet"])
    return {
        lora.lora_name: sum(p.numel() for p in lora.parameters() if p.requires_grad)
        for lora in net.text_encoder_loras + net.unet_loras
    }


def predicted_modules(args: dict) -> dict[str, int]:
    size = adapter_size(args)
    out = {f"{PREFIX[m.layer.component]}_{m.layer.name.replace('.', '_')}": m.params for m in size.modules}
    assert len(out) == len(size.modules)
    return out


def assert_same(models, args: dict) -> dict[str, int]:
    real, predicted = real_modules(models, args), predicted_modules(args)
    assert sorted(set(real) - set(predicted)) == [], "LyCORIS adapts modules fit does not count"
    assert sorted(set(predicted) - set(real)) == [], "fit counts modules LyCORIS does not adapt"
    differ = {name: (predicted[name], real[name]) for name in real if real[name] != predicted[name]}
    assert differ == {}, "parameters per module (fit, LyCORIS)"
    return real


def test_the_skeleton_holds_the_tables_layers(models):
    """The rebuilt tree has every recorded module, and its Linear/Conv2d weights have the table's sizes."""
    for comp, root in (("unet", models["unet"]), ("te1", models["te"][0]), ("te2", models["te"][1])):
        rows = sdxl_data()["modules"][comp]
        assert [name for name, _ in root.named_modules()][1:] == [row[0] for row in rows]
        layers = {row[0]: row for row in rows if len(row) > 2 and row[2] in ("linear", "conv2d")}
        weights = {name: m.weight.numel() for name, m in root.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
        assert weights == {name: row[4] * row[3] // row[7] * row[5] * row[6] for name, row in layers.items()}


@pytest.mark.parametrize("name", LYCORIS_CONFIGS)
def test_every_shipped_lycoris_config_counts_what_lycoris_creates(models, name):
    assert_same(models, load_config(str(CONFIGS / f"{name}.toml"), []).config.script_args())


def test_the_guides_pony_locon_has_the_issues_measured_size(models):
    args = load_config(str(CONFIGS / "pony-sdxl-locon.toml"), []).config.script_args()
    real = assert_same(models, args)
    assert (sum(real.values()), len(real)) == (120_067_584, 1_052)  # as measured in issue 14


@pytest.mark.parametrize("name", [n for n, a in ADAPTER_VARIANTS.items() if a["network_module"] == "lycoris.kohya"])
def test_each_lycoris_variant_counts_what_lycoris_creates(models, name):
    assert_same(models, ADAPTER_VARIANTS[name])
