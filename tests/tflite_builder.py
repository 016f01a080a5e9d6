"""A minimal ``.tflite`` writer for the importer tests (flatbuffers builder API of the ``tflite`` package).

``ModelBuilder`` collects tensors (constant data, optional int8 quantization) and operators (builtin
options given as ``("Conv2DOptions", {"Padding": 0, ...})``, field names as in the TFLite schema), and
``build()`` returns the flatbuffer bytes that the TFLite interpreter and the importer both read.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
import tflite

_TYPES = {"float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "int16": 7, "int8": 9}


class ModelBuilder:
    def __init__(self):
        self.buffers: list[bytes] = [b""]
        self.tensors: list[dict] = []
        self.ops: list[dict] = []
        self.codes: list[tuple[int, str]] = []

    def tensor(self, name: str, shape, data=None, dtype: str = "float32", quant: dict | None = None) -> int:
        """Add a tensor (constant when ``data`` is given) and return its index."""
        buf = 0
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data).astype(dtype).reshape(shape))
            self.buffers.append(arr.astype(np.dtype(dtype).newbyteorder("<")).tobytes())
            buf = len(self.buffers) - 1
        self.tensors.append(dict(name=name, shape=[int(d) for d in shape], type=_TYPES[dtype], buffer=buf,
                                 quant=quant))
        return len(self.tensors) - 1

    def const(self, name: str, data, dtype: str = "float32") -> int:
        a = np.asarray(data)
        return self.tensor(name, a.shape, a, dtype)

    def op(self, kind: str, inputs, outputs, options: tuple[str, dict] | None = None) -> None:
        """``kind``: a BuiltinOperator name, or ``"CUSTOM:<code>"``."""
        custom = kind.split(":", 1)[1] if kind.startswith("CUSTOM:") else ""
        code = 32 if custom else getattr(tflite.BuiltinOperator, kind)
        if (code, custom) not in self.codes:
            self.codes.append((code, custom))
        self.ops.append(dict(code=self.codes.index((code, custom)), inputs=list(inputs), outputs=list(outputs),
                             options=options))

    # ---------------------------------------------------------------- serialization
    @staticmethod
    def _vec(b, arr, dtype):
        return b.CreateNumpyVector(np.asarray(arr, dtype=dtype))

    @staticmethod
    def _table_vec(b, offsets):
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    def _options(self, b, options):
        cls, fields = options
        scalar = {k: v for k, v in fields.items()}
        getattr(tflite, f"{cls}Start")(b)
        for k, v in scalar.items():
            getattr(tflite, f"{cls}Add{k}")(b, v)
        return getattr(tflite, f"{cls}End")(b), getattr(tflite.BuiltinOptions, cls)

    def _quant(self, b, q):
        sc = self._vec(b, np.atleast_1d(q["scale"]), np.float32)
        zp = self._vec(b, np.atleast_1d(q.get("zero_point", 0)), np.int64)
        tflite.QuantizationParametersStart(b)
        tflite.QuantizationParametersAddScale(b, sc)
        tflite.QuantizationParametersAddZeroPoint(b, zp)
        tflite.QuantizationParametersAddQuantizedDimension(b, int(q.get("axis", 0)))
        return tflite.QuantizationParametersEnd(b)

    def build(self, inputs, outputs) -> bytes:
        b = flatbuffers.Builder(1024)
        bufs = []
        for data in self.buffers:
            d = self._vec(b, np.frombuffer(data, np.uint8), np.uint8) if data else None
            tflite.BufferStart(b)
            if d is not None:
                tflite.BufferAddData(b, d)
            bufs.append(tflite.BufferEnd(b))
        tens = []
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = self._vec(b, t["shape"], np.int32)
            q = self._quant(b, t["quant"]) if t["quant"] else None
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, t["type"])
            tflite.TensorAddBuffer(b, t["buffer"])
            tflite.TensorAddName(b, name)
            if q is not None:
                tflite.TensorAddQuantization(b, q)
            tens.append(tflite.TensorEnd(b))
        ops = []
        for o in self.ops:
            ins, outs = self._vec(b, o["inputs"], np.int32), self._vec(b, o["outputs"], np.int32)
            opt = self._options(b, o["options"]) if o["options"] else None
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, o["code"])
            tflite.OperatorAddInputs(b, ins)
            tflite.OperatorAddOutputs(b, outs)
            if opt is not None:
                tflite.OperatorAddBuiltinOptionsType(b, opt[1])
                tflite.OperatorAddBuiltinOptions(b, opt[0])
            ops.append(tflite.OperatorEnd(b))
        t_vec, o_vec = self._table_vec(b, tens), self._table_vec(b, ops)
        i_vec, out_vec = self._vec(b, inputs, np.int32), self._vec(b, outputs, np.int32)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, t_vec)
        tflite.SubGraphAddInputs(b, i_vec)
        tflite.SubGraphAddOutputs(b, out_vec)
        tflite.SubGraphAddOperators(b, o_vec)
        sg = tflite.SubGraphEnd(b)
        codes = []
        for code, custom in self.codes:
            cs = b.CreateString(custom) if custom else None
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, 1)
            if cs is not None:
                tflite.OperatorCodeAddCustomCode(b, cs)
            codes.append(tflite.OperatorCodeEnd(b))
        c_vec, sg_vec, b_vec = self._table_vec(b, codes), self._table_vec(b, [sg]), self._table_vec(b, bufs)
        desc = b.CreateString("pyquant test model")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, c_vec)
        tflite.ModelAddSubgraphs(b, sg_vec)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, b_vec)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())
