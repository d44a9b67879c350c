"""What each optimizer and each optimizer_args / lr_scheduler_args key does, in loratrain's own words.

Types and defaults are not restated here: they come from the constructor table (optimizers.py). A test checks
that every key an sd-scripts optimizer or scheduler accepts has a line here.
"""

from __future__ import annotations

# Shown for a key of a torch.optim or dotted optimizer that has no line below (only the sd-scripts names are
# documented in full); its type and default still come from the constructor table.
UNDOCUMENTED = "An argument of {target}; loratrain has no description of it (see that class's documentation)."

OPTIMIZER_DOCS = {
    "AdamW": "Adam with decoupled weight decay, full precision; the usual choice (1e-4 for LoRA).",
    "AdamW8bit": "AdamW keeping its moment estimates in 8 bits: less memory, nearly the same result.",
    "PagedAdamW": "AdamW whose state can be paged out to CPU memory when the GPU runs short.",
    "PagedAdamW8bit": "8-bit AdamW with paged state.",
    "PagedAdamW32bit": "32-bit AdamW from bitsandbytes with paged state.",
    "SGDNesterov": "SGD with Nesterov momentum (sd-scripts sets nesterov=True and momentum 0.9 unless given).",
    "SGDNesterov8bit": "8-bit SGD with Nesterov momentum (momentum 0.9 unless given).",
    "Lion": "Sign-based momentum optimizer; wants a learning rate 3-10x below AdamW's and more weight decay.",
    "Lion8bit": "Lion with 8-bit state.",
    "PagedLion8bit": "Lion with 8-bit, paged state.",
    "DAdaptation": "Alias of DAdaptAdamPreprint: D-Adaptation estimates the step size; set learning rates near 1.",
    "DAdaptAdamPreprint": "The preprint version of D-Adapted Adam; learning rate near 1.",
    "DAdaptAdaGrad": "D-Adapted AdaGrad; adapts slowly, DAdaptAdam is usually preferred.",
    "DAdaptAdam": "D-Adapted Adam; learning rate near 1; decouple=True for AdamW-style weight decay.",
    "DAdaptAdan": "D-Adapted Adan (three betas).",
    "DAdaptAdanIP": "Experimental D-Adapted Adan variant (three betas).",
    "DAdaptLion": "D-Adapted Lion; weight decay is always decoupled.",
    "DAdaptSGD": "D-Adapted SGD.",
    "Prodigy": "Estimates the step size like D-Adaptation, usually faster; learning rate near 1, d_coef scales it.",
    "Adafactor": "Memory-light Adam relative; with relative_step (its default) it picks its own step size and "
    "ignores learning rates.",
    "RAdamScheduleFree": "Schedule-free RAdam: no scheduler and no warm-up needed.",
    "AdamWScheduleFree": "Schedule-free AdamW: no scheduler; warm-up through warmup_steps in optimizer_args.",
    "SGDScheduleFree": "Schedule-free SGD: no scheduler; warm-up through warmup_steps in optimizer_args.",
}

OPTIMIZER_ARG_DOCS = {
    "betas": "Decay rates of the running averages: (first moment, second moment); Adan-type optimizers take "
    "three. Higher values average over more steps.",
    "beta1": "Adafactor's first-moment decay; unset keeps no first moment (less memory).",
    "beta3": "Prodigy's decay for its step-size estimate; unset uses the square root of the second beta.",
    "eps": "Small number added to denominators for numerical safety (Adafactor takes two: for the squared "
    "gradient and for the parameter scale).",
    "weight_decay": "Pulls weights towards zero each step; a mild regulariser (0.01 is common).",
    "decouple": "Apply weight decay AdamW-style, separate from the gradient step (recommended with weight decay).",
    "decoupled_weight_decay": "Lion: scale the weight decay by the learning rate's schedule only, not its size.",
    "use_bias_correction": "Adam's bias correction of the running averages in the step-size estimate; tends to "
    "slow early steps down.",
    "safeguard_warmup": "Prodigy: keep a learning-rate warm-up from inflating the step-size estimate; turn on "
    "when a scheduler warms up.",
    "d0": "Initial step-size estimate of D-Adaptation / Prodigy; raise it if the estimate grows too slowly.",
    "d_coef": "Prodigy: multiplies the estimated step size; below 1 trains more gently, above 1 harder.",
    "growth_rate": "Largest factor by which the step-size estimate may grow per step (unbounded by default).",
    "log_every": "Print the step-size estimate every N steps (0: never).",
    "fsdp_in_use": "Set when training with fully sharded data parallel, so the estimate is summed across shards.",
    "slice_p": "Prodigy: estimate from every p-th element only, saving memory for large layers.",
    "no_prox": "Adan: apply weight decay as a plain step instead of the proximal update.",
    "amsgrad": "Use the AMSGrad variant (keeps the largest second moment seen).",
    "maximize": "Maximise the objective instead of minimising it (never wanted for training a LoRA).",
    "foreach": "Use torch's multi-tensor kernels; None lets torch decide.",
    "fused": "Use torch's fused CUDA kernel for the update; None lets torch decide.",
    "capturable": "Keep optimizer state usable inside CUDA graphs.",
    "differentiable": "Let autograd see through the optimizer step (for meta-learning; slower).",
    "momentum": "Momentum factor of SGD-type optimizers.",
    "dampening": "Dampening of the momentum; must be 0 with Nesterov momentum.",
    "optim_bits": "bitsandbytes: bits of the optimizer state (32 or 8).",
    "min_8bit_size": "bitsandbytes: tensors smaller than this many elements keep 32-bit state.",
    "is_paged": "bitsandbytes: page the optimizer state to CPU memory when the GPU runs short.",
    "use_triton": "Lion: use the Triton kernel for the update (needs triton installed).",
    "clip_threshold": "Adafactor: clips the update's root-mean-square at this value (1.0 recommended).",
    "decay_rate": "Adafactor: exponent of the second-moment decay schedule.",
    "scale_parameter": "Adafactor: scale the step by the parameter's size; turn off to use your learning rate "
    "as given.",
    "relative_step": "Adafactor: compute the step size from the step count, ignoring learning rates (sd-scripts "
    "then forces the adafactor scheduler); set False to use learning_rate and a normal scheduler.",
    "warmup_init": "Adafactor: warm the relative step size up from zero; only works with relative_step.",
    "r": "Schedule-free: weight later iterates more in the average (polynomial power).",
    "weight_lr_power": "Schedule-free: how strongly the learning rate weights each iterate in the average.",
    "warmup_steps": "Schedule-free: linear warm-up length in steps, instead of lr_warmup_steps.",
    "silent_sgd_phase": "RAdamScheduleFree: skip the update while RAdam's variance estimate is not ready.",
}

SCHEDULER_ARG_DOCS = {
    "last_epoch": "Index of the last step when resuming a schedule; -1 starts from the beginning.",
    "num_cycles": "cosine: number of half-waves of the cosine (0.5 decays once to zero).",
    "lr_end": "polynomial: the learning rate at the end of the run.",
    "min_lr": "cosine_with_min_lr: the floor as an absolute rate (sd-scripts sets the ratio form from "
    "lr_scheduler_min_lr_ratio).",
    "num_training_steps": "warmup_stable_decay: total steps, when not derived from the stable and decay lengths.",
    "warmup_type": "warmup_stable_decay: shape of the warm-up (linear, cosine or 1-sqrt).",
    "decay_type": "warmup_stable_decay: shape of the decay (cosine, linear or 1-sqrt).",
    "step_rules": "piecewise_constant: multipliers by step as text, e.g. '1:10,0.1:20,0.01' (1.0 until step 10, "
    "0.1 until step 20, then 0.01).",
}


def arg_doc(docs: dict[str, str], name: str, target: str) -> str:
    """The text explain shows for one optimizer_args / lr_scheduler_args key."""
    return docs.get(name) or UNDOCUMENTED.format(target=target)
