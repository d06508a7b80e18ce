"""The autoencoder, and only the model: hyperparameters live in config.ModelSettings."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}


class Autoencoder(nn.Module):
    """A fully connected autoencoder: n_inputs -> hidden[0] -> ... -> hidden[-1] -> ... -> n_inputs.

    The decoder mirrors the encoder; the output layer is linear. Dropout acts
    on every hidden layer of the encoder while training. ``mean`` (a buffer,
    saved with the weights) is subtracted from the input and added back to
    the output: set it to the mean training face to centre the data.
    """

    def __init__(self, n_inputs: int, hidden: list[int], activation: str, dropout: float, tied: bool = False) -> None:
        super().__init__()
        sizes = [n_inputs, *hidden]
        pairs = list(zip(sizes, sizes[1:], strict=False))
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.tied = tied  # the decoder reuses the encoder's weights, transposed, with biases of its own
        if tied:
            self.decoder_bias = nn.ParameterList(nn.Parameter(torch.zeros(a)) for a, _ in reversed(pairs))
        else:
            self.decoder = nn.ModuleList(nn.Linear(b, a) for a, b in reversed(pairs))
        self.act = ACTIVATIONS[activation]()
        self.dropout = dropout
        self.register_buffer("mean", torch.zeros(n_inputs))

    def encode(self, x: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """Hidden activations after ``depth`` layers (all encoder layers by default)."""
        x = x - self.mean
        for layer in self.encoder[:depth]:
            x = self._drop(self.act(layer(x)))
        return x

    def _drop(self, h: torch.Tensor) -> torch.Tensor:
        """Inverted dropout. The mask comes from uniform draws compared with the rate:
        on CPU that is several times faster than nn.Dropout's Bernoulli sampling."""
        if not self.training or self.dropout == 0:
            return h
        keep = torch.rand_like(h) >= self.dropout
        return h * keep.to(h.dtype).mul_(1 / (1 - self.dropout))

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        layers = self._decoder_layers()
        for layer in layers[:-1]:
            h = self.act(layer(h))
        return layers[-1](h) + self.mean

    def _decoder_layers(self) -> list:
        if not self.tied:
            return list(self.decoder)
        # h @ W, not linear(h, W.t()): the weight gradient then comes out in W's own layout, and adding it to
        # the encoder's is a contiguous add, not a strided one (a tenth of the training time on CPU)
        return [lambda h, w=enc.weight, b=bias: torch.addmm(b, h, w)
                for enc, bias in zip(reversed(self.encoder), self.decoder_bias, strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
