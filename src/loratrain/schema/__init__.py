"""The config models: one per table, composed into TrainConfig (see root.py)."""

from loratrain.schema.root import MODELLED, SCRIPT_GROUPS, TrainConfig, group_of

__all__ = ["MODELLED", "SCRIPT_GROUPS", "TrainConfig", "group_of"]
