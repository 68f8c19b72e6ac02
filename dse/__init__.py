"""dse: a design-space explorer for running ternary-weight LLMs (BitNet b1.58) on FPGAs."""

__version__ = "0.1.0"
