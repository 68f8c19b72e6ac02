"""Ternary weights for real: bit-exact packers, the engine's stream layout, quantization
and loaders.

- ``schemes``: ``pack``/``unpack`` for every scheme ``dse.model.packing`` prices.
- ``stream``: the byte order of the overlay's AXI streams (overlays/STREAM.md).
- ``quant``: BitNet ternarization, int8 activations and the golden int GEMV.
- ``loaders``: ternary layers + scales from HF BitNet checkpoints and GGUF files.

numpy only at import; the ``gguf`` and ``safetensors`` packages (extra ``weights``) are
imported by the loaders when a file is read.
"""

from dse.packing.schemes import SCHEMES, pack, unpack

__all__ = ["SCHEMES", "pack", "unpack"]
