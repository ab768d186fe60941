"""The circles set autoencoder of the official SRN code (appendix B.1), ported: G -> F, into
which ``adapters.circles`` puts a refiner (G -> refiner -> F).

Widths are configurable so that the smaller presets can shrink them; the defaults are the
paper's. Images are [B, 3, 64, 64], sets [B, N, D] (N = set size, D = element dims).
"""
import math

import torch
from torch import nn
from torch.nn import functional


GENERATOR_WIDTHS = (64, 128, 256, 512)
DECODER_WIDTHS = (1024, 512, 256)
FEATURE_SIDE = 2  # G's final feature map is [B, C, 2, 2] for 64x64 images


class SetGenerator(nn.Module):
    """G: a DCGAN-style CNN (4x4 kernels, strides 2, 2, 2, 4; batch norm after all but the
    first) to a feature map [B, C, 2, 2], flattened to F = 4C features (channel-major) and
    cut into ``set_size`` contiguous groups, each mapped to an element by one shared
    linear layer (the paper's Conv1d with kernel 1).

    When the set size does not divide F, the features are padded with zeros to the next
    multiple, so that every group has the same width (with the paper's F = 2048 this
    happens for set sizes that are not powers of two, e.g. 9).
    """

    def __init__(self, set_size: int = 16, element_dims: int = 10, widths: tuple = GENERATOR_WIDTHS):
        super().__init__()
        c1, c2, c3, c4 = widths
        self.convs = nn.Sequential(
            nn.Conv2d(3, c1, 4, stride=2, padding=1, bias=False), nn.ReLU(),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(),
            nn.Conv2d(c2, c3, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c3), nn.ReLU(),
            nn.Conv2d(c3, c4, 4, stride=4, padding=1, bias=False), nn.BatchNorm2d(c4), nn.ReLU(),
            nn.Flatten(),
        )
        self.set_size, self.element_dims, self.channels = set_size, element_dims, c4
        self.feature_count = c4 * FEATURE_SIDE**2
        self.group_width = math.ceil(self.feature_count / set_size)
        self.to_element = nn.Linear(self.group_width, element_dims)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images [B, 3, 64, 64] -> (features [B, F], initial set S0 [B, N, D])."""
        features = self.convs(images)
        padding = self.set_size * self.group_width - self.feature_count
        groups = functional.pad(features, (0, padding)).view(len(images), self.set_size, self.group_width)
        return features, self.to_element(groups)


class ElementDecoder(nn.Module):
    """TransposeConvs of eq. 4: each element to its own image logits, independently.

    Linear D -> C0*4*4 (batch norm, ReLU), then transposed convolutions to C1 (4x4, stride 2),
    C2 (4x4, stride 2) with batch norm and ReLU, and to 3 channels (4x4, stride 4): 64x64.
    """

    def __init__(self, element_dims: int = 10, widths: tuple = DECODER_WIDTHS):
        super().__init__()
        c0, c1, c2 = widths
        self.project = nn.Sequential(
            nn.Linear(element_dims, c0 * 4 * 4, bias=False), nn.BatchNorm1d(c0 * 4 * 4), nn.ReLU(),
            nn.Unflatten(1, (c0, 4, 4)),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(c0, c1, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(),
            nn.ConvTranspose2d(c1, c2, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(),
            nn.ConvTranspose2d(c2, 3, 4, stride=4, padding=0, bias=False),
        )

    def forward(self, elements: torch.Tensor) -> torch.Tensor:
        """elements [M, D] -> logits [M, 3, 64, 64]."""
        return self.upsample(self.project(elements))


class SetImageDecoder(nn.Module):
    """F of eq. 4: I_i = TransposeConvs(S_i), output = sum_i softmax_i(I) * sigmoid(I_i).

    The softmax runs over the elements, per pixel and channel, so the output lies in [0, 1]
    and does not depend on the order of the elements (batch norm pools over all elements).
    """

    def __init__(self, element_dims: int = 10, widths: tuple = DECODER_WIDTHS):
        super().__init__()
        self.element = ElementDecoder(element_dims, widths)

    def forward(self, elements: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """elements [B, N, D] -> (image [B, 3, 64, 64], parts [B, N, 3, 64, 64]), where
        parts[:, i] = softmax_i(I) * sigmoid(I_i) is element i's share of the image."""
        batch, size, dims = elements.shape
        logits = self.element(elements.reshape(batch * size, dims))
        logits = logits.view(batch, size, *logits.shape[1:])
        parts = logits.softmax(dim=1) * logits.sigmoid()
        return parts.sum(dim=1), parts


class CircleAutoencoder(nn.Module):
    """Image -> set -> image. Built (``build_autoencoder``) it is the baseline: the set is
    S0 = G(x). With a refiner put in (``adapters.circles.install``) it is refiner(S0, z,
    features) with z = embed(x), a linear map of G's flattened features (H_embed of
    Algorithm 1; None for a kind that takes no z), and features the 2 x 2 cells of G's last
    feature map [B, 4, C].

    By default gradient flows back to G through both z and S0, as srn.SetRefiner promises.
    detach_initial_set: refine a copy of S0 that passes no gradient back to G, as the
    official circles code does (it wraps S0 in a new nn.Parameter): G's convolutions then
    learn only through z, and its last layer (S0's projection) keeps its initial weights.
    """

    def __init__(self, generator: SetGenerator, decoder: SetImageDecoder):
        super().__init__()
        self.generator = generator
        self.decoder = decoder
        self.refiner: nn.Module | None = None  # adapters.circles.install sets these three
        self.embed: nn.Module | None = None
        self.detach_initial_set = False

    @property
    def device(self) -> torch.device:
        """Where the parameters are (batches go there)."""
        return next(self.parameters()).device

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, 3, 64, 64] -> the set handed to F [B, N, D]."""
        features, initial = self.generator(images)
        if self.refiner is None:
            return initial
        if self.detach_initial_set:
            initial = initial.detach()
        cells = features.view(len(images), -1, FEATURE_SIDE**2).transpose(1, 2)  # [B, 4, C]: G's last feature map
        z = None if self.embed is None else self.embed(features)
        return self.refiner(initial, z, features=cells).set

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images [B, 3, 64, 64] -> (reconstruction [B, 3, 64, 64], parts [B, N, 3, 64, 64],
        set [B, N, D])."""
        elements = self.encode(images)
        reconstruction, parts = self.decoder(elements)
        return reconstruction, parts, elements


def build_autoencoder(set_size: int, element_dims: int, generator_widths: tuple,
                      decoder_widths: tuple) -> CircleAutoencoder:
    """The autoencoder G -> F on the CPU, G and F drawing their initial weights from torch's
    generator (the same draws in every arm: a refiner put in draws its own)."""
    return CircleAutoencoder(SetGenerator(set_size, element_dims, tuple(generator_widths)),
                             SetImageDecoder(element_dims, tuple(decoder_widths)))
