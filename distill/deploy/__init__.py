"""Running exported models: the deployment side of the project.

Nothing here imports torch or the training code: an export folder (``exp/<model>/export``,
written by :mod:`distill.export`) is decoded with onnxruntime, sherpa-onnx and
kaldi-native-fbank alone, as on a device.
"""
