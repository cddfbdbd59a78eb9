"""Transducer models: encoders, predictors, the joiner, and the k2 pruned RNN-T loss.

Build a model from a config with :func:`distill.models.registry.build_transducer`.
"""
