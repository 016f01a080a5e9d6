"""pyquant: mixed-precision (INT8/INT6/INT4/INT2) weight quantization and the integer
reference arithmetic of the precision-scalable FPGA accelerator.

Pure math lives in :mod:`pyquant.quant` (codes, scales, metrics, width choice),
:mod:`pyquant.packing` (dense bit packing) and :mod:`pyquant.intmath` (the bit-exact integer
layer arithmetic that the HLS kernel, the RTL and the firmware reproduce).
"""

from pyquant.packing import pack, unpack, row_bytes, group_size
from pyquant.quant import QMAX, quantize, qmax, snr_db, in_range, scale_maxabs
from pyquant.intmath import requantize, layer_int, quantize_multiplier

__all__ = [
    "pack", "unpack", "row_bytes", "group_size",
    "QMAX", "qmax", "quantize", "snr_db", "in_range", "scale_maxabs",
    "requantize", "layer_int", "quantize_multiplier",
    "infer_float", "infer_int",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    """Lazy exports of the inference API (``pyquant.infer_float``, ``pyquant.infer_int``)."""
    if name in ("infer_float", "infer_int"):
        from pyquant import infer

        return getattr(infer, name)
    raise AttributeError(f"module 'pyquant' has no attribute {name!r}")
