"""PL units besides the ternary engines: one module per kind, all behind one protocol.

``base`` holds the protocol (``PLUnit``), the pricing environment (``UnitEnv``) and the registry
of kinds; ``attention`` (kv_attn, N instances) and ``glue`` (the FFN glue) are the kinds dse
ships. Importing this package registers them.
"""

from dse.model.units import attention, glue  # noqa: F401  (registers the shipped kinds)
from dse.model.units.attention import ATTENTION_OPS, AttentionTemplate, AttentionUnit
from dse.model.units.base import (
    PLUnit,
    UnitEnv,
    UnitKind,
    instance_split,
    kind_of,
    kinds,
    port_of_instance,
    register,
)
from dse.model.units.glue import GLUE_OPS, SCANNED_ROLES, GlueUnit

__all__ = [
    "ATTENTION_OPS",
    "GLUE_OPS",
    "SCANNED_ROLES",
    "AttentionTemplate",
    "AttentionUnit",
    "GlueUnit",
    "PLUnit",
    "UnitEnv",
    "UnitKind",
    "instance_split",
    "kind_of",
    "kinds",
    "port_of_instance",
    "register",
]
