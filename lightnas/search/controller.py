"""The ENAS controller (an LSTM emitting one choice per decision point) and its REINFORCE update."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lightnas.search.space import Architecture, SearchSpace


@dataclass
class ControllerSample:
    """A sampled architecture with its summed log-probability and entropy (both differentiable)."""

    architecture: Architecture
    log_prob: torch.Tensor
    entropy: torch.Tensor


class Controller(nn.Module):
    """ENAS controller: an LSTM stepping once per decision point, in space order.

    The first input is a learned `g_emb`; each later input is the embedding of the previous
    point's choice. Every decision point has its own embedding table and linear head because
    points differ in their number of choices.
    """

    def __init__(
        self,
        space: SearchSpace,
        hidden_size: int = 64,
        temperature: float | None = None,
        tanh_constant: float | None = 1.5,
        num_layers: int = 1,
    ) -> None:
        super().__init__()
        if len(space) == 0:
            raise ValueError(f"search space {space.name!r} has no decision points")
        self.space = space
        self.hidden_size = hidden_size
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.num_layers = num_layers
        self.g_emb = nn.Parameter(torch.empty(1, hidden_size))
        self.lstm = nn.ModuleList(nn.LSTMCell(hidden_size, hidden_size) for _ in range(num_layers))
        # Indexed by position: decision point names contain dots, which ModuleDict keys may not.
        self.embeddings = nn.ModuleList(nn.Embedding(len(p.choices), hidden_size) for p in space)
        self.heads = nn.ModuleList(nn.Linear(hidden_size, len(p.choices)) for p in space)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """ENAS initialisation: uniform(-0.1, 0.1) everywhere, zero head biases."""
        for param in self.parameters():
            nn.init.uniform_(param, -0.1, 0.1)
        for head in self.heads:
            nn.init.zeros_(head.bias)

    def _step(
        self, x: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        """Advance every LSTM layer by one step in place; return the top layer's output."""
        for i, cell in enumerate(self.lstm):
            state[i] = cell(x, state[i])
            x = state[i][0]
        return x

    def _logits(self, hidden: torch.Tensor, index: int) -> torch.Tensor:
        logits = self.heads[index](hidden)
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def _decode(
        self, choose: Callable[[torch.Tensor], int]
    ) -> tuple[list[int], list[torch.Tensor]]:
        """Run the LSTM over all decision points; `choose` maps each point's logits to a choice."""
        zeros = self.g_emb.new_zeros(1, self.hidden_size)
        state = [(zeros, zeros) for _ in self.lstm]
        x = self.g_emb
        indices, all_logits = [], []
        for i in range(len(self.space)):
            logits = self._logits(self._step(x, state), i)
            index = choose(logits)
            indices.append(index)
            all_logits.append(logits[0])
            x = self.embeddings[i].weight[index : index + 1]
        return indices, all_logits

    def sample(self, generator: torch.Generator | None = None) -> ControllerSample:
        """Sample an architecture; `generator` makes the draw reproducible."""

        def draw(logits: torch.Tensor) -> int:
            return int(torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator))

        indices, all_logits = self._decode(draw)
        log_probs = [F.log_softmax(logits, dim=-1) for logits in all_logits]
        log_prob = torch.stack([lp[i] for lp, i in zip(log_probs, indices, strict=True)]).sum()
        entropy = -torch.stack([(lp.exp() * lp).sum() for lp in log_probs]).sum()
        return ControllerSample(self.space.from_indices(indices), log_prob, entropy)

    @torch.no_grad()
    def sample_many(self, n: int, generator: torch.Generator | None = None) -> list[Architecture]:
        """`n` architectures decoded as one batch (no grad): the shared-weight phase's sampler."""
        zeros = self.g_emb.new_zeros(n, self.hidden_size)
        state = [(zeros, zeros) for _ in self.lstm]
        x = self.g_emb.expand(n, -1)
        columns = []
        for i in range(len(self.space)):
            probs = F.softmax(self._logits(self._step(x, state), i), dim=-1)
            index = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            columns.append(index)
            x = self.embeddings[i](index)
        rows = torch.stack(columns, dim=1).tolist()
        return [self.space.from_indices(row) for row in rows]

    @torch.no_grad()
    def greedy(self) -> Architecture:
        """The most likely choice at every decision point."""
        indices, _ = self._decode(lambda logits: int(logits.argmax()))
        return self.space.from_indices(indices)

    @torch.no_grad()
    def probabilities(self) -> dict[str, list[float]]:
        """Choice probabilities per decision point along the greedy path."""
        _, all_logits = self._decode(lambda logits: int(logits.argmax()))
        return {
            p.name: F.softmax(logits, dim=-1).tolist()
            for p, logits in zip(self.space, all_logits, strict=True)
        }


class Reinforce:
    """REINFORCE with an exponential-moving-average baseline and entropy bonus, Adam."""

    def __init__(
        self,
        controller: Controller,
        lr: float = 3.5e-4,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.95,
        grad_clip: float | None = None,
    ) -> None:
        self.controller = controller
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self.grad_clip = grad_clip
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=lr)
        self.baseline: float | None = None

    def _update_baseline(self, reward: float) -> float:
        if self.baseline is None:
            self.baseline = reward
        else:
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        return self.baseline

    def step(self, samples: list[ControllerSample], rewards: list[float]) -> dict[str, float]:
        """One Adam update on the mean loss of `samples` (sampled with grad on); returns stats."""
        if not samples or len(samples) != len(rewards):
            raise ValueError(f"need as many rewards as samples, got {len(rewards)}/{len(samples)}")
        mean_reward = sum(rewards) / len(rewards)
        # As in ENAS the baseline absorbs this step's reward before the advantage is taken. One EMA
        # update per step (with the batch mean) keeps `baseline_decay` independent of batch size.
        baseline = self._update_baseline(mean_reward)
        advantages = [r - baseline for r in rewards]
        log_probs = torch.stack([s.log_prob for s in samples])
        entropies = torch.stack([s.entropy for s in samples])
        adv = torch.tensor(advantages, dtype=log_probs.dtype, device=log_probs.device)
        loss = (-adv * log_probs - self.entropy_weight * entropies).mean()

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.controller.parameters(), self.grad_clip)
        self.optimizer.step()
        return {
            "reward": mean_reward,
            "baseline": baseline,
            "entropy": entropies.mean().item(),
            "loss": loss.item(),
            "advantage": sum(advantages) / len(advantages),
        }

    def state_dict(self) -> dict:
        """Optimizer state and baseline; loadable with `torch.load(..., weights_only=True)`."""
        return {"optimizer": self.optimizer.state_dict(), "baseline": self.baseline}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = None if state["baseline"] is None else float(state["baseline"])
