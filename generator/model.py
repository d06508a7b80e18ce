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
        keep = self._keep(h.shape)
        return h if keep is None else h * keep

    def _keep(self, shape: torch.Size) -> torch.Tensor | None:
        """Dropout's scaled mask for hidden activations of this shape (None: no dropout now)."""
        if not self.training or self.dropout == 0:
            return None
        keep = torch.rand(shape, device=self.mean.device) >= self.dropout
        return keep.to(self.mean.dtype).mul_(1 / (1 - self.dropout))

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the last hidden layer's activations, the reconstruction) of ``x``, as encode and decode give them.

        A tied model of one layer being trained takes both in one autograd node (_TiedLayer), which computes the
        weight's gradient in one product and one accumulating product, not as two products then a sum: on
        CPU the two weight gradients were the slowest products of a training step."""
        if self.tied and len(self.encoder) == 1 and type(self.act) in _TIED_ACTIVATIONS and torch.is_grad_enabled():
            layer = self.encoder[0]
            keep = self._keep(torch.Size((len(x), layer.out_features)))
            hidden, out = _TiedLayer.apply(x - self.mean, layer.weight, layer.bias, self.decoder_bias[0], keep,
                                           _TIED_ACTIVATIONS[type(self.act)])
            return hidden, out + self.mean
        hidden = self.encode(x)
        return hidden, self.decode(hidden)

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


_TIED_ACTIVATIONS = {nn.ReLU: False, nn.Sigmoid: True}  # the activations _TiedLayer knows: is it the sigmoid


class _TiedLayer(torch.autograd.Function):
    """One tied layer's encoder and decoder as one autograd node: from centred inputs ``x``, the hidden units
    ``h = act(x @ W.T + b) * keep`` and the centred reconstruction ``h @ W + c``. Its backward is the one autograd
    builds from the separate ops (tests/test_train.py checks it with gradcheck), with the weight's two gradients
    (through the encoder and through the decoder) summed by the product that makes the second."""

    @staticmethod
    def forward(ctx, x, weight, bias, decoder_bias, keep, sigmoid: bool):
        ctx.set_materialize_grads(False)
        z = torch.addmm(bias, x, weight.t())
        active = torch.sigmoid(z) if sigmoid else z.clamp_min_(0)
        hidden = active if keep is None else active * keep
        out = torch.addmm(decoder_bias, hidden, weight)
        ctx.save_for_backward(x, weight, active, hidden, keep)
        ctx.sigmoid = sigmoid
        return hidden, out

    @staticmethod
    def backward(ctx, grad_hidden, grad_out):
        x, weight, active, hidden, keep = ctx.saved_tensors
        if grad_out is None:
            grad_out = torch.zeros(len(x), weight.shape[1], dtype=x.dtype, device=x.device)
        grad_weight = torch.mm(hidden.t(), grad_out)  # through the decoder, then through the encoder
        grad = grad_out @ weight.t()
        if grad_hidden is not None:
            grad += grad_hidden
        if keep is not None:
            grad *= keep
        grad *= active * (1 - active) if ctx.sigmoid else active > 0
        grad_weight.addmm_(grad.t(), x)
        return None, grad_weight, grad.sum(dim=0), grad_out.sum(dim=0), None, None
