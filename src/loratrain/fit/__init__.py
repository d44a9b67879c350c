"""`loratrain fit`'s model: predicted peak GPU memory of an SDXL LoRA run, read from the effective view.

`model.py` (the estimate, one function per part), `adapter_size.py` (the exact adapter sd-scripts builds),
`advice.py` (ranked `--set` changes), `cards.py` (GPUs by name and the verdict). The probe that measures a
real run is `launch/probe.py`.
"""
