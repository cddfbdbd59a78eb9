"""The transducer's parts in the shapes a deployment runtime drives, one graph each.

sherpa-onnx (and icefall's ``export-onnx.py`` files that make models for it) splits a
transducer into three graphs, so that any search loop can drive them:

* encoder: features -> ``encoder_out`` already projected to the joiner's dimension
  (``joiner.encoder_proj`` folded in, so the loop never touches encoder-sized tensors twice);
* decoder (the predictor): the last ``context_size`` tokens -> ``decoder_out``, projected
  (``joiner.decoder_proj`` folded in);
* joiner: one frame of each -> ``logit`` over the vocabulary.

Streaming encoders take a chunk of feature frames and their recurrent state and return the
next state. The encoders' ungrouped 1-D convolutions (the TDNN layers, the Conformer's
pointwise ones) are exported as matrix products over stacked shifted frames
(:class:`TimeDelayMatMul`), which int8 quantization makes integer matrix products:
onnxruntime's integer 1-D convolution was slower than its fp32 one. The LSTM predictor,
which sherpa-onnx cannot drive, gets a graph with its state as inputs and outputs, for this
project's own onnxruntime loop (:mod:`distill.deploy`).
"""
from __future__ import annotations

import copy
from typing import Tuple

import torch
from torch import nn
from torch.nn import functional as F

from distill.models.conformer import PositionalEncoding, sinusoid_table
from distill.models.decoder import StatelessDecoder
from distill.models.lstm_encoder import LstmEncoder
from distill.models.lstm_predictor import LstmPredictor
from distill.models.transducer import Transducer


class ExportError(ValueError):
    """A model that cannot be exported the way asked; the message names it and the reason."""


class TimeDelayMatMul(nn.Module):
    """A 1-D convolution over time ("same" zero padding, stride 1, any dilation), computed as
    one matrix product: the ``kernel_size`` shifted copies of the input are stacked along the
    channels and multiplied by the kernel laid out as a (channels_out, kernel_size *
    channels_in) matrix. The same function as the convolution, in the op (MatMul) that
    onnxruntime's dynamic quantization turns into its fast integer product (MatMulInteger)
    and torch's into a quantized Linear. Takes and gives (N, C, T), as ``nn.Conv1d``.
    """

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        (kernel_size,), (dilation,) = conv.kernel_size, conv.dilation
        if not _convertible(conv):
            raise ExportError(f"TimeDelayMatMul takes an ungrouped stride-1 convolution with 'same' zero padding, "
                              f"got {conv}")
        self.kernel_size, self.dilation, self.padding = kernel_size, dilation, conv.padding[0]
        self.linear = nn.Linear(kernel_size * conv.in_channels, conv.out_channels, bias=conv.bias is not None)
        with torch.no_grad():
            # Column block k of the matrix is the kernel's tap k (the input shifted by k * dilation).
            self.linear.weight.copy_(conv.weight.permute(0, 2, 1).reshape(conv.out_channels, -1))
            if conv.bias is not None:
                self.linear.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == 1:  # pointwise: no shifted copies
            return self.linear(x.transpose(1, 2)).transpose(1, 2)
        num_frames = x.size(2)
        padded = F.pad(x, (self.padding, self.padding)).transpose(1, 2)  # (N, T + 2 p, C)
        taps = [padded[:, k * self.dilation: k * self.dilation + num_frames] for k in range(self.kernel_size)]
        return self.linear(torch.cat(taps, dim=2)).transpose(1, 2)


def _convertible(conv: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv1d) and conv.groups == 1 and conv.stride == (1,) and conv.padding_mode == "zeros"
            and conv.padding == (conv.dilation[0] * (conv.kernel_size[0] - 1) // 2,))


class PositionsInGraph(nn.Module):
    """:class:`PositionalEncoding` with its sinusoids computed for the input's length in the
    graph (:func:`sinusoid_table`, as the module builds its table), instead of sliced from its
    precomputed table: traced, the table would be stored whole in the file (2000 x d_model
    floats, 1.5 MB at d_model 192) and inputs longer than it would fail."""

    def __init__(self, pos_enc: PositionalEncoding) -> None:
        super().__init__()
        self.d_model = pos_enc.d_model
        self.dropout = pos_enc.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + sinusoid_table(x.size(1), self.d_model, x.device).to(x.dtype))


def _encoder_for_export(model: Transducer) -> nn.Module:
    """The model's encoder as the export graphs compute it: a copy (the model is left as it
    is) whose ungrouped 1-D convolutions over time (the TDNN layers, the Conformer's pointwise
    convolutions) are :class:`TimeDelayMatMul`, grouped (depthwise) and 2-D ones staying, and
    whose positional encoding is :class:`PositionsInGraph`."""
    encoder = copy.deepcopy(model.encoder)
    for parent in list(encoder.modules()):
        for name, child in list(parent.named_children()):
            if _convertible(child):
                setattr(parent, name, TimeDelayMatMul(child))
            elif isinstance(child, PositionalEncoding):
                setattr(parent, name, PositionsInGraph(child))
    return encoder


class OfflineEncoder(nn.Module):
    """``(x, x_lens) -> (encoder_out, encoder_out_lens)``: the whole utterance at once."""

    def __init__(self, model: Transducer) -> None:
        super().__init__()
        self.encoder = _encoder_for_export(model)
        self.encoder_proj = model.joiner.encoder_proj

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
          x:
            Features of shape (N, T, num_features), T >= 7.
          x_lens:
            Int64 tensor of shape (N,).
        Returns:
          ``encoder_out`` of shape (N, T', joiner_dim) and ``encoder_out_lens`` (N,), int64.
        """
        encoder_out, encoder_out_lens = self.encoder(x, x_lens)
        return self.encoder_proj(encoder_out), encoder_out_lens


class StreamingLstmEncoder(nn.Module):
    """``(x, h, c) -> (encoder_out, next_h, next_c)``: one chunk of the causal LSTM encoder.

    The chunk holds ``4 (n + R) + 3`` feature frames (R: the encoder's ``lookahead_frames``)
    and gives ``n`` encoder frames; the next chunk starts ``4 n`` frames later, so the front
    end's 7-frame convolutions and the look-ahead see exactly the frames they see on the
    whole utterance, and the LSTM states carry the rest. That is the contract of sherpa-onnx's
    "lstm" online model (metadata ``T`` = 4 (n + R) + 3 and ``decode_chunk_len`` = 4 n). The
    last chunk of a stream is what is left, followed by ``4 R`` frames of
    :data:`~distill.models.lstm_encoder.LOOKAHEAD_PAD_FEATURE`, the future the offline
    encoder reads after an utterance's end. ``h`` stacks the layers' output states, shape
    (num_layers, N, encoder_dim), ``c`` their cell states, (num_layers, N, hidden_dim).
    """

    def __init__(self, model: Transducer) -> None:
        super().__init__()
        encoder = model.encoder
        if not isinstance(encoder, LstmEncoder):
            raise ExportError(f"Only the LSTM encoder streams with carried state; this model's encoder is "
                              f"{type(encoder).__name__}")
        if encoder.subsampling.feature_norm != "global":
            raise ExportError("A streaming encoder needs feature_norm 'global': 'utterance' subtracts the mean "
                              "of the whole utterance, which a stream does not have yet")
        self.encoder = encoder
        self.encoder_proj = model.joiner.encoder_proj

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
          x:
            Features of shape (N, 4 (n + R) + 3, num_features).
          h / c:
            The states after the previous chunk (zeros at the start), shapes
            (num_layers, N, encoder_dim) and (num_layers, N, hidden_dim).
        Returns:
          ``encoder_out`` (N, n, joiner_dim), ``next_h``, ``next_c``.
        """
        sub = self.encoder.front_end(x)
        states = [(h[i:i + 1], c[i:i + 1]) for i in range(len(self.encoder.layers))]
        out, new_states = self.encoder.run_layers(sub, states)
        out = self.encoder_proj(self.encoder.output(self.encoder.norm(out)))
        next_h = torch.cat([s[0] for s in new_states], dim=0)
        next_c = torch.cat([s[1] for s in new_states], dim=0)
        return out, next_h, next_c


class StatelessDecoderGraph(nn.Module):
    """``y (N, context_size) -> decoder_out (N, joiner_dim)``, sherpa-onnx's decoder contract.

    Runtimes may fill the context before the first token with -1 (sherpa-onnx does); like
    blank, it reads as the zero embedding.
    """

    def __init__(self, model: Transducer) -> None:
        super().__init__()
        if not isinstance(model.decoder, StatelessDecoder):
            raise ExportError(f"Not a stateless predictor: {type(model.decoder).__name__}")
        self.decoder = model.decoder
        self.decoder_proj = model.joiner.decoder_proj
        self.blank_id = model.decoder.blank_id

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        y = torch.where(y < 0, torch.full_like(y, self.blank_id), y)
        out = self.decoder(y, need_pad=False)  # (N, 1, decoder_dim)
        return self.decoder_proj(out[:, -1])


class LstmDecoderGraph(nn.Module):
    """``(y (N, 1), h, c) -> (decoder_out (N, joiner_dim), next_h, next_c)``: the LSTM
    predictor reads one token; ``h`` and ``c`` have shape (num_layers, N, decoder_dim)."""

    def __init__(self, model: Transducer) -> None:
        super().__init__()
        if not isinstance(model.decoder, LstmPredictor):
            raise ExportError(f"Not an LSTM predictor: {type(model.decoder).__name__}")
        self.decoder = model.decoder
        self.decoder_proj = model.joiner.decoder_proj

    def forward(self, y: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, (next_h, next_c) = self.decoder.step(y[:, 0], (h, c))
        return self.decoder_proj(out), next_h, next_c


class JoinerGraph(nn.Module):
    """``(encoder_out (N, joiner_dim), decoder_out (N, joiner_dim)) -> logit (N, vocab_size)``."""

    def __init__(self, model: Transducer) -> None:
        super().__init__()
        self.output_linear = model.joiner.output_linear

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor) -> torch.Tensor:
        return self.output_linear(torch.tanh(encoder_out + decoder_out))
