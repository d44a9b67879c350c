"""Run by path in the training interpreter: the CUDA devices torch sees (a fallback when nvidia-smi is absent).

Answer: {"gpus": [{"index", "name", "cap"}]} or {"error": "torch: ..."}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING or __package__:
    from loratrain.sdscripts.probes.probe_common import answer
else:  # run by path: this folder is sys.path[0]
    from probe_common import answer


def main() -> None:
    try:
        import torch
    except Exception as exc:
        answer({"error": "torch: %s" % exc})
        return
    out = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(i)
            out.append({"index": i, "name": torch.cuda.get_device_name(i), "cap": major + minor / 10})
    answer({"gpus": out})


if __name__ == "__main__":
    main()
