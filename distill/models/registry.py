"""Registries of encoders and predictors, and :func:`build_transducer`.

Adding an architecture is one entry: a function from :class:`ModelConfig` to the module.
"""
from __future__ import annotations

import logging
from typing import Callable, Dict

from distill.models.config import ModelConfig
from distill.models.conformer import ConformerEncoder
from distill.models.decoder import Predictor, StatelessDecoder
from distill.models.joiner import Joiner
from distill.models.lstm_encoder import LstmEncoder
from distill.models.lstm_predictor import LstmPredictor
from distill.models.tdnn_encoder import TdnnEncoder
from distill.models.transducer import Encoder, Transducer, num_params


def _conformer(config: ModelConfig) -> Encoder:
    return ConformerEncoder(
        num_features=config.num_features,
        encoder_dim=config.encoder_dim,
        num_layers=config.num_encoder_layers,
        nhead=config.nhead,
        dim_feedforward=config.dim_feedforward,
        cnn_module_kernel=config.cnn_module_kernel,
        dropout=config.dropout,
        subsampling_channels=config.subsampling_channels,
        subsampling_first_channels=config.subsampling_first_channels,
        feature_norm=config.feature_norm,
        positional_encoding=config.positional_encoding,
    )


def _lstm_encoder(config: ModelConfig) -> Encoder:
    return LstmEncoder(
        num_features=config.num_features,
        encoder_dim=config.encoder_dim,
        num_layers=config.num_encoder_layers,
        hidden_dim=config.lstm_hidden_dim,
        ff_dim=config.dim_feedforward,
        dropout=config.dropout,
        subsampling_channels=config.subsampling_channels,
        subsampling_first_channels=config.subsampling_first_channels,
        feature_norm=config.feature_norm,
        lookahead_frames=config.lookahead_frames,
    )


def _tdnn(config: ModelConfig) -> Encoder:
    return TdnnEncoder(
        num_features=config.num_features,
        encoder_dim=config.encoder_dim,
        num_layers=config.num_encoder_layers,
        kernel_size=config.cnn_module_kernel,
        dilations=config.tdnn_dilations,
        dropout=config.dropout,
        subsampling_channels=config.subsampling_channels,
        subsampling_first_channels=config.subsampling_first_channels,
        feature_norm=config.feature_norm,
    )


def _stateless(config: ModelConfig) -> Predictor:
    return StatelessDecoder(
        vocab_size=config.vocab_size,
        decoder_dim=config.decoder_dim,
        blank_id=config.blank_id,
        context_size=config.context_size,
    )


def _lstm_predictor(config: ModelConfig) -> Predictor:
    return LstmPredictor(
        vocab_size=config.vocab_size,
        decoder_dim=config.decoder_dim,
        blank_id=config.blank_id,
        num_layers=config.num_predictor_layers,
        dropout=config.dropout,
    )


#: Encoder builders by ``ModelConfig.encoder``.
ENCODERS: Dict[str, Callable[[ModelConfig], Encoder]] = {
    "conformer": _conformer,
    "lstm": _lstm_encoder,
    "tdnn": _tdnn,
}

#: Predictor builders by ``ModelConfig.decoder``.
PREDICTORS: Dict[str, Callable[[ModelConfig], Predictor]] = {
    "stateless": _stateless,
    "lstm": _lstm_predictor,
}


def build_transducer(config: ModelConfig) -> Transducer:
    """Build a transducer from its config.

    Args:
      config:
        The model config; ``encoder`` and ``decoder`` must be keys of ``ENCODERS`` and
        ``PREDICTORS``.
    Returns:
      A freshly initialized :class:`Transducer`.
    """
    if config.encoder not in ENCODERS:
        raise ValueError(f"Unknown encoder {config.encoder!r}; choose one of {sorted(ENCODERS)}")
    if config.decoder not in PREDICTORS:
        raise ValueError(f"Unknown decoder {config.decoder!r}; choose one of {sorted(PREDICTORS)}")
    encoder = ENCODERS[config.encoder](config)
    decoder = PREDICTORS[config.decoder](config)
    joiner = Joiner(encoder.output_dim, decoder.output_dim, config.joiner_dim, config.vocab_size)
    model = Transducer(encoder, decoder, joiner, aux_ctc=config.aux_ctc)
    if config.init_blank_prob > 0:
        model.init_output_biases(config.init_blank_prob)
    logging.info(f"Built transducer ({config.encoder} encoder, {config.decoder} predictor): {num_params(model):,} parameters")
    return model
