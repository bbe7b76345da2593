"""The training losses: cross-entropy, and its blend with a teacher's soft targets (knowledge
distillation, Hinton et al., 2015), used with a full-precision teacher (`distill.teacher`, built
in lightnas.run.teacher) and for in-place distillation from the largest child (BigNAS)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightnas.errors import LightNASError


class NonFiniteLossError(LightNASError):
    """The training loss became NaN or infinite: the run stops, its last checkpoint is kept."""


def check_finite(mean_loss: float, epoch: int, step: int | None = None) -> None:
    """A NonFiniteLossError when the mean training loss of `epoch` (at `step`) is NaN or inf."""
    if not math.isfinite(mean_loss):
        where = f"epoch {epoch + 1}" + ("" if step is None else f" step {step + 1}")
        raise NonFiniteLossError(
            f"non-finite training loss at {where}; stopping (the last checkpoint is kept). "
            "Lower optim.lr or set optim.grad_clip."
        )


LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]  # (logits, targets, inputs) -> loss


def cross_entropy(logits: Tensor, y: Tensor, x: Tensor) -> Tensor:
    return F.cross_entropy(logits, y)


def distillation_loss(
    logits: Tensor, teacher_logits: Tensor, y: Tensor, alpha: float, temperature: float
) -> Tensor:
    """(1 - alpha) * CE + alpha * T^2 * KL(softmax(teacher / T) || softmax(logits / T))."""
    ce = F.cross_entropy(logits, y)
    if alpha == 0:
        return ce
    t = temperature
    kl = F.kl_div(
        F.log_softmax(logits / t, dim=1),
        F.log_softmax(teacher_logits.float() / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    # T^2 keeps the soft term's gradients on the scale of the hard term's (Hinton et al.)
    return (1 - alpha) * ce + alpha * t * t * kl


class DistillationLoss:
    """The training loss blended with a frozen teacher's soft targets (an engine `LossFn`)."""

    def __init__(self, teacher: nn.Module, alpha: float, temperature: float) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.alpha = alpha
        self.temperature = temperature

    def __call__(self, logits: Tensor, y: Tensor, x: Tensor) -> Tensor:
        if self.alpha == 0:
            return F.cross_entropy(logits, y)
        with torch.no_grad():
            teacher_logits = self.teacher(x)
        return distillation_loss(logits, teacher_logits, y, self.alpha, self.temperature)
