"""Exporting trained transducers for deployment: ONNX (the form sherpa-onnx loads),
TorchScript, and int8 versions of both (:mod:`distill.export.exporter`)."""
