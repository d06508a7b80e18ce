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

    def __init__(self, n_inputs: int, hidden: list[int], activation: str, dropout: float) -> None:
        super().__init__()
        sizes = [n_inputs, *hidden]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:], strict=False))
        self.decoder = nn.ModuleList(nn.Linear(b, a) for a, b in reversed(list(zip(sizes, sizes[1:], strict=False))))
        self.act = ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout)
        self.register_buffer("mean", torch.zeros(n_inputs))

    def encode(self, x: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """Hidden activations after ``depth`` layers (all encoder layers by default)."""
        x = x - self.mean
        for layer in self.encoder[:depth]:
            x = self.drop(self.act(layer(x)))
        return x

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        for layer in self.decoder[:-1]:
            h = self.act(layer(h))
        return self.decoder[-1](h) + self.mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
