"""Generate the SDXL structure and activation data that `loratrain fit` reads (no torch at run time).

Builds sd-scripts' own SDXL U-Net (library/sdxl_original_unet.py) and transformers' two CLIP text models
on PyTorch's meta device (no weights, no memory), then writes two JSON files next to this script:

* sdxl_layers.json: every module of the U-Net, text encoder 1 (CLIP ViT-L) and text encoder 2 (OpenCLIP
  bigG): its dotted name and class (containers too, so a target class can be matched against a module's
  ancestors the way networks.lora and LyCORIS do), and for Linear / Conv2d / norm layers their shapes and
  the number of output positions per sample at the reference size (1024x1024 image = 128x128 latent,
  77 tokens), which sizes an adapter's own saved activations.
* sdxl_activations.json: what autograd saves for backward (torch.autograd.graph.saved_tensors_hooks,
  de-duplicated by storage, parameters excluded), per top-level U-Net block and per gradient-checkpoint unit,
  for each attention mode (sdpa, xformers, mem_eff_attn, none), with and without gradient checkpointing,
  at three latent sizes so that `fit` can scale by area exactly (a + b*A + c*A^2 per block), and for the
  text encoders per 77-token chunk. Batch 1, bf16 activations.

Attention on the meta device: `none` and `mem_eff_attn` run sd-scripts' own code paths. `sdpa` and `xformers`
are measured through a stand-in with the memory contract of the fused CUDA kernels (flash / memory-efficient
attention save q, k, v, the output and one fp32 log-sum-exp per query and head), because PyTorch's meta
device would otherwise take the math fallback that materialises the attention matrix, which no CUDA run does.

Run (needs torch, einops and transformers==4.54.1, i.e. sd-scripts' pins; NOT needed by loratrain itself):

    python src/loratrain/data/fit/make_sdxl_fit_data.py --sds /path/to/sd-scripts-48d368f
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
TE_ARCH = {  # text parts of openai/clip-vit-large-patch14 and laion/CLIP-ViT-bigG-14-laion2B-39B-b160k
    "te1": dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        hidden_act="quick_gelu",
        projection_dim=768,
    ),
    "te2": dict(
        hidden_size=1280,
        intermediate_size=5120,
        num_hidden_layers=32,
        num_attention_heads=20,
        hidden_act="gelu",
        projection_dim=1280,
    ),
}
TE_COMMON = dict(
    vocab_size=49408,
    max_position_embeddings=77,
    layer_norm_eps=1e-5,
    dropout=0.0,
    attention_dropout=0.0,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)
REF_LATENT = 128  # 1024 px / 8
SIZES = (64, 96, 128)  # latent sides measured; fit uses their areas
TOKENS = 77
MODES = ("sdpa", "xformers", "mem_eff_attn", "none")
CKPT_UNITS = ("ResnetBlock2D", "BasicTransformerBlock", "Downsample2D", "Upsample2D")


def log(msg):
    print(f"[make_sdxl_fit_data {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fused_attention_standin(torch):
    """An autograd Function whose saved tensors are those of CUDA flash / memory-efficient attention."""

    class FusedAttention(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v, layout):
            # layout "bhnd" (torch sdpa) or "bnhd" (xformers)
            if layout == "bnhd":
                b, n, h, d = q.shape
                out = torch.empty(b, n, h, v.shape[-1], dtype=q.dtype, device=q.device)
            else:
                b, h, n, d = q.shape
                out = torch.empty(b, h, n, v.shape[-1], dtype=q.dtype, device=q.device)
            lse = torch.empty(b, h, n, dtype=torch.float32, device=q.device)
            ctx.save_for_backward(q, k, v, out, lse)
            return out

        @staticmethod
        def backward(ctx, grad):  # never run on meta
            q, k, v, _, _ = ctx.saved_tensors
            return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v), None

    return FusedAttention


def import_sds(path):
    if not os.path.isfile(os.path.join(path, "library", "sdxl_original_unet.py")):
        sys.exit(f"sd-scripts not found at {path!r} (pass --sds)")
    sys.path.insert(0, path)
    try:
        import library.utils  # noqa: F401  (pulls torchvision, cv2, diffusers)
    except ImportError:
        # The U-Net module takes only setup_logging from library.utils; the rest of that module is image
        # and scheduler helpers whose imports are not installed here. Nothing structural is replaced.
        utils = types.ModuleType("library.utils")
        utils.setup_logging = lambda *a, **k: None
        sys.modules["library.utils"] = utils
    from library import sdxl_original_unet

    return sdxl_original_unet


def build(sdxl_original_unet):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.set_default_dtype(torch.bfloat16)
    with torch.device("meta"):
        unet = sdxl_original_unet.SdxlUNet2DConditionModel()
        te1 = CLIPTextModel(CLIPTextConfig(**TE_COMMON, **TE_ARCH["te1"]))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig(**TE_COMMON, **TE_ARCH["te2"]))
    return {"unet": unet, "te1": te1, "te2": te2}


def positions_per_sample(torch, model, run):
    """Output positions per sample of every Linear / Conv2d during one batch-1 forward."""
    out, hooks = {}, []
    for name, m in model.named_modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):

            def hook(mod, inp, res, name=name):
                shape = res.shape
                pos = 1
                if isinstance(mod, torch.nn.Linear):
                    for s in shape[:-1]:
                        pos *= s
                else:
                    pos = shape[0] * shape[2] * shape[3]
                out[name] = max(out.get(name, 0), pos)

            hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        run(1, REF_LATENT)
    for h in hooks:
        h.remove()
    return out


def layer_table(torch, model, positions):
    mods = []
    for name, m in model.named_modules():
        if not name:
            continue
        row = [name, m.__class__.__name__]
        if isinstance(m, torch.nn.Linear):
            row += ["linear", m.in_features, m.out_features, 1, 1, 1, positions.get(name, 0)]
        elif isinstance(m, torch.nn.Conv2d):
            kh, kw = m.kernel_size
            row += ["conv2d", m.in_channels, m.out_channels, kh, kw, m.groups, positions.get(name, 0)]
        elif isinstance(m, torch.nn.GroupNorm):
            row += ["groupnorm", m.num_channels, int(m.bias is not None)]
        elif isinstance(m, torch.nn.LayerNorm):
            n = 1
            for s in m.normalized_shape:
                n *= s
            row += ["layernorm", n, int(m.bias is not None)]
        mods.append(row)
    return mods


class SavedCounter:
    """Counts bytes autograd saves, de-duplicated by storage, attributed to a block and a checkpoint unit."""

    def __init__(self, torch, model):
        self.torch = torch
        self.param_storages = {p.untyped_storage()._cdata for p in model.parameters()}
        self.seen = set()
        self.block = "other"
        self.unit = None
        self.per_block = {}
        self.per_unit = {}
        self.total = 0

    def pack(self, t):
        st = t.untyped_storage()
        key = st._cdata
        if key not in self.param_storages and key not in self.seen:
            self.seen.add(key)
            n = st.nbytes()
            self.total += n
            self.per_block[self.block] = self.per_block.get(self.block, 0) + n
            if self.unit is not None:
                self.per_unit[self.unit] = self.per_unit.get(self.unit, 0) + n
        return t

    @staticmethod
    def unpack(t):
        return t

    def track(self, model, block_of, unit_classes=()):
        hooks = []
        for name, m in model.named_modules():
            blk = block_of(name)
            if blk is not None:

                def pre(mod, args, blk=blk):
                    self.block = blk

                hooks.append(m.register_forward_pre_hook(pre))
            if m.__class__.__name__ in unit_classes:

                def upre(mod, args, name=name):
                    self.unit = name

                def upost(mod, args, res):
                    self.unit = None

                hooks.append(m.register_forward_pre_hook(upre))
                hooks.append(m.register_forward_hook(upost))
        return hooks


def unet_block_of(name):
    """The top-level block a module belongs to. Every module gets a pre-hook, because sd-scripts' forward calls
    the layers of input_blocks.N / output_blocks.N one by one rather than the block itself."""
    parts = name.split(".")
    if parts[0] in ("time_embed", "label_emb", "middle_block", "out"):
        return parts[0]
    if len(parts) >= 2 and parts[0] in ("input_blocks", "output_blocks"):
        return ".".join(parts[:2])
    return None


def set_attention(unet, mode):
    unet.set_use_memory_efficient_attention(mode == "xformers", mode == "mem_eff_attn")
    unet.set_use_sdpa(mode == "sdpa")


def measure_unet(torch, unet, mode, gc, side):
    set_attention(unet, mode)
    if gc:
        unet.enable_gradient_checkpointing()
    else:
        unet.disable_gradient_checkpointing()
    unet.train()
    unet.requires_grad_(True)  # an adapter on every layer makes autograd keep what full training keeps
    counter = SavedCounter(torch, unet)
    hooks = counter.track(unet, unet_block_of, () if gc else CKPT_UNITS)
    x = torch.empty(1, 4, side, side, device="meta")
    t = torch.zeros(1, dtype=torch.long, device="meta")
    ctx = torch.empty(1, TOKENS, 2048, device="meta")
    y = torch.empty(1, 2816, device="meta")
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
        unet(x, t, ctx, y)
    for h in hooks:
        h.remove()
    return counter


def measure_te(torch, te, gc):
    te.train()
    te.requires_grad_(True)
    if gc:
        te.gradient_checkpointing_enable()
    else:
        te.gradient_checkpointing_disable()
    counter = SavedCounter(torch, te)
    ids = torch.zeros(1, TOKENS, dtype=torch.long, device="meta")
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
        te(ids, output_hidden_states=True)
    return counter.total


def fit_quadratic(areas, values):
    """Exact a + b*A + c*A^2 through three points (Cramer's rule, integers kept as floats)."""
    (a1, a2, a3), (v1, v2, v3) = areas, values
    den = (a1 - a2) * (a1 - a3) * (a2 - a3)
    c = (a3 * (v2 - v1) + a2 * (v1 - v3) + a1 * (v3 - v2)) / den
    b = (a3 * a3 * (v1 - v2) + a2 * a2 * (v3 - v1) + a1 * a1 * (v2 - v3)) / den
    a = (a2 * a3 * (a2 - a3) * v1 + a3 * a1 * (a3 - a1) * v2 + a1 * a2 * (a1 - a2) * v3) / den
    return [a, b, c]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sds", required=True, help="sd-scripts work tree at 48d368f")
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args(argv)
    t0 = time.time()
    sdxl_original_unet = import_sds(os.path.abspath(args.sds))
    import torch
    import torch.nn.functional as F
    import transformers

    # sdpa / xformers: the fused kernels' saved tensors (see the module docstring).
    fused = fused_attention_standin(torch)
    F.scaled_dot_product_attention = lambda q, k, v, *a, **kw: fused.apply(q, k, v, "bhnd")
    xops = types.ModuleType("xformers.ops")
    xops.memory_efficient_attention = lambda q, k, v, attn_bias=None: fused.apply(q, k, v, "bnhd")
    sys.modules["xformers"] = types.ModuleType("xformers")
    sys.modules["xformers"].ops = xops
    sys.modules["xformers.ops"] = xops

    models = build(sdxl_original_unet)
    unet = models["unet"]
    set_attention(unet, "sdpa")

    def run_unet(batch, side):
        unet(
            torch.empty(batch, 4, side, side, device="meta"),
            torch.zeros(batch, dtype=torch.long, device="meta"),
            torch.empty(batch, TOKENS, 2048, device="meta"),
            torch.empty(batch, 2816, device="meta"),
        )

    layers = {"unet": layer_table(torch, unet, positions_per_sample(torch, unet, run_unet))}
    for key in ("te1", "te2"):
        te = models[key]
        pos = positions_per_sample(
            torch, te, lambda b, s, te=te: te(torch.zeros(b, TOKENS, dtype=torch.long, device="meta"))
        )
        layers[key] = layer_table(torch, te, pos)
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    source = {
        "sd_scripts": "48d368f library/sdxl_original_unet.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__.split("+")[0],
        "generator": os.path.basename(__file__),
    }
    with open(os.path.join(args.out, "sdxl_layers.json"), "w") as f:
        json.dump(
            {
                "source": source,
                "reference": {"latent": REF_LATENT, "tokens": TOKENS},
                "params": params,
                "modules": layers,
            },
            f,
            separators=(",", ":"),
        )
        f.write("\n")
    log(f"layers: {', '.join(f'{k}: {len(v)} modules' for k, v in layers.items())}; params {params}")

    areas = [s * s for s in SIZES]
    unet_act = {}
    for mode in MODES:
        for gc in (False, True):
            runs = []
            for side in SIZES:
                t = time.time()
                runs.append(measure_unet(torch, unet, mode, gc, side))
                log(
                    f"unet {mode} gc={gc} {side}x{side}: {runs[-1].total / 2**20:,.1f} MiB saved ({time.time() - t:.1f} s)"
                )
            blocks = sorted({b for r in runs for b in r.per_block})
            entry = {
                "total": fit_quadratic(areas, [r.total for r in runs]),
                "blocks": {b: fit_quadratic(areas, [r.per_block.get(b, 0) for r in runs]) for b in blocks},
            }
            if not gc:
                # the largest checkpoint unit: what one recomputation holds during a checkpointed backward
                units = sorted({u for r in runs for u in r.per_unit})
                fits = {u: fit_quadratic(areas, [r.per_unit.get(u, 0) for r in runs]) for u in units}
                entry["units"] = fits
            unet_act[f"{mode}/{'gc' if gc else 'full'}"] = entry
    te_act = {}
    for key in ("te1", "te2"):
        for gc in (False, True):
            te_act[f"{key}/{'gc' if gc else 'full'}"] = measure_te(torch, models[key], gc)
            log(f"{key} gc={gc}: {te_act[f'{key}/' + ('gc' if gc else 'full')] / 2**20:,.2f} MiB per 77-token sample")
    with open(os.path.join(args.out, "sdxl_activations.json"), "w") as f:
        json.dump(
            {
                "source": source,
                "dtype": "bf16",
                "batch": 1,
                "latent_sides": list(SIZES),
                "unit": "bytes; U-Net entries are [a, b, c] for a + b*A + c*A^2 with A = latent area (h*w)",
                "unet": unet_act,
                "text_encoders_per_77_tokens": te_act,
            },
            f,
            indent=1,
        )
        f.write("\n")
    log(f"done in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
