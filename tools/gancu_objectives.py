"""The GAN objectives of `train.loss`, as gancu defines them, written with PyTorch's autograd.

l is D's output (a logit or a critic score), means are over the batch:

  bce          D: BCE(l_real, 1 - label_smoothing) + BCE(l_fake, 0)    G: BCE(l_fake_g, 1)
  bce-minimax  D: as bce                                                G: -BCE(l_fake_g, 0) = mean log(1 - sigmoid(l))
  lsgan        D: 0.5 mean (l_real - 1)^2 + 0.5 mean l_fake^2           G: 0.5 mean (l_fake_g - 1)^2
  hinge        D: mean relu(1 - l_real) + mean relu(1 + l_fake)         G: -mean l_fake_g
  wgan         D: -mean l_real + mean l_fake; every D parameter clamped to [-clip, clip] after
               each D step                                              G: -mean l_fake_g
  wgan-gp      wgan's losses, no clipping, plus gp_weight mean_i (||grad D(xhat_i)|| - 1)^2 at
               xhat_i = eps_i x_i + (1 - eps_i) fake_i, eps_i ~ U[0, 1)
  dragan       bce's losses plus the same two-sided penalty at
               xhat = x + (1 - alpha_i) spread std(x) u, alpha_i ~ U[0, 1) per sample, u ~ U[0, 1)
               per value, std over the whole real batch (unbiased)
  r1           bce's losses plus, on D steps whose index is a multiple of r1_interval,
               (r1_gamma / 2) r1_interval mean_i ||grad D(x_i)||^2 on the real batch
  began        D is an auto-encoder, L(v) = mean |D(v) - v|; D: L(x) - k L(fake), G: L(fake);
               after each D step k = clamp(k + lambda_k (gamma L(x) - L(fake)), 0, 1), and the
               convergence measure M = L(x) + |gamma L(x) - L(fake)|

Input gradients come from torch.autograd.grad(D(points).sum(), points, create_graph=True) (double
backward): this is the reference that gancu's forward-mode tangent method is checked against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

OBJECTIVES = ("bce", "bce-minimax", "lsgan", "hinge", "wgan", "wgan-gp", "dragan", "r1", "began")
BCE_FAMILY = ("bce", "bce-minimax", "dragan", "r1")  # D's terms are BCE (and use label smoothing)
PENALIZED = ("wgan-gp", "dragan", "r1")  # need input gradients of D (no batch norm in D)

# train.* keys of the objectives and their defaults (gancu's config knows the same).
OBJECTIVE_DEFAULTS = {
    "gp_weight": 10.0, "clip": 0.01, "r1_gamma": 10.0, "r1_interval": 1, "dragan_spread": 0.5,
    "began_gamma": 0.5, "began_lambda_k": 0.001, "began_k0": 0.0,
}


@dataclass(frozen=True)
class Objective:
    loss: str
    real_target: float = 1.0  # BCE target of real samples: 1 - label_smoothing
    gp_weight: float = OBJECTIVE_DEFAULTS["gp_weight"]
    clip: float = OBJECTIVE_DEFAULTS["clip"]
    r1_gamma: float = OBJECTIVE_DEFAULTS["r1_gamma"]
    r1_interval: int = OBJECTIVE_DEFAULTS["r1_interval"]
    dragan_spread: float = OBJECTIVE_DEFAULTS["dragan_spread"]
    began_gamma: float = OBJECTIVE_DEFAULTS["began_gamma"]
    began_lambda_k: float = OBJECTIVE_DEFAULTS["began_lambda_k"]
    began_k0: float = OBJECTIVE_DEFAULTS["began_k0"]

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for each invalid setting."""
        out = []
        if self.loss not in OBJECTIVES:
            out.append(("loss", f"'{self.loss}' is not an objective (one of: {', '.join(OBJECTIVES)})"))
        if not (self.gp_weight >= 0 and math.isfinite(self.gp_weight)):
            out.append(("gp_weight", "must be >= 0"))
        if not (self.clip > 0 and math.isfinite(self.clip)):
            out.append(("clip", "must be > 0 (wgan clips D's parameters to [-clip, clip])"))
        if not (self.r1_gamma >= 0 and math.isfinite(self.r1_gamma)):
            out.append(("r1_gamma", "must be >= 0"))
        if self.r1_interval < 1:
            out.append(("r1_interval", "must be >= 1"))
        if not (self.dragan_spread >= 0 and math.isfinite(self.dragan_spread)):
            out.append(("dragan_spread", "must be >= 0"))
        if not 0.0 <= self.began_gamma <= 1.0:
            out.append(("began_gamma", "must be in [0, 1]"))
        if not (self.began_lambda_k >= 0 and math.isfinite(self.began_lambda_k)):
            out.append(("began_lambda_k", "must be >= 0"))
        if not 0.0 <= self.began_k0 <= 1.0:
            out.append(("began_k0", "must be in [0, 1]"))
        return out

    @property
    def penalized(self) -> bool:
        return self.loss in PENALIZED

    @property
    def autoencoder(self) -> bool:
        return self.loss == "began"

    def r1_weight(self) -> float:
        """The weight of mean ||g||^2 on an R1 step: (gamma / 2) times the lazy interval."""
        return self.r1_gamma / 2.0 * self.r1_interval

    def penalizes_d_step(self, d_index: int) -> bool:
        """Whether D step number d_index (counted over the run from 0) computes the penalty."""
        if self.loss == "r1":
            return d_index % self.r1_interval == 0
        return self.loss in ("wgan-gp", "dragan")

    # ---- losses of D's outputs (not began) --------------------------------------------------

    def d_real_loss(self, l: torch.Tensor) -> torch.Tensor:
        if self.loss in BCE_FAMILY:
            return F.binary_cross_entropy_with_logits(l, torch.full_like(l, self.real_target))
        if self.loss == "lsgan":
            return 0.5 * (l - 1.0).square().mean()
        if self.loss == "hinge":
            return F.relu(1.0 - l).mean()
        return -l.mean()  # wgan, wgan-gp

    def d_fake_loss(self, l: torch.Tensor) -> torch.Tensor:
        if self.loss in BCE_FAMILY:
            return F.binary_cross_entropy_with_logits(l, torch.zeros_like(l))
        if self.loss == "lsgan":
            return 0.5 * l.square().mean()
        if self.loss == "hinge":
            return F.relu(1.0 + l).mean()
        return l.mean()  # wgan, wgan-gp

    def g_loss(self, l: torch.Tensor) -> torch.Tensor:
        if self.loss == "bce-minimax":  # minimizes log(1 - sigmoid(l)) = -BCE(l, 0)
            return -F.binary_cross_entropy_with_logits(l, torch.zeros_like(l))
        if self.loss in BCE_FAMILY:
            return F.binary_cross_entropy_with_logits(l, torch.ones_like(l))
        if self.loss == "lsgan":
            return 0.5 * (l - 1.0).square().mean()
        return -l.mean()  # hinge, wgan, wgan-gp

    def score(self, l: torch.Tensor) -> torch.Tensor:
        """D's mean verdict for the logs: the probability for BCE, the raw score otherwise."""
        return torch.sigmoid(l).mean() if self.loss in BCE_FAMILY else l.mean()


# ---- gradient penalties ---------------------------------------------------------------------

def _per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-sample vector [B] shaped to broadcast over a batch like `like`."""
    return t.reshape(-1, *([1] * (like.dim() - 1)))


def interpolate(x: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's points eps_i x_i + (1 - eps_i) fake_i (eps [B])."""
    e = _per_sample(eps, x)
    return e * x + (1.0 - e) * fake


def perturb(x: torch.Tensor, alpha: torch.Tensor, u: torch.Tensor, spread: float) -> torch.Tensor:
    """DRAGAN's points x + (1 - alpha_i) spread std(x) u (alpha [B], u like x, std unbiased over all of x)."""
    sigma = x.std()
    return x + (_per_sample(1.0 - alpha, x) * spread * sigma) * u


def input_gradients(D, points: torch.Tensor, inputs: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """D(points) and its gradient with respect to points (which must require grad), kept in the
    graph so that a penalty of it can be differentiated with respect to D's parameters. `inputs`
    are D's other inputs (a conditional critic's one-hot `label` rows): constants of the penalty."""
    out = D(points, **(inputs or {}))
    (g,) = torch.autograd.grad(out.sum(), points, create_graph=True)
    return out, g


def two_sided_penalty(g: torch.Tensor, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight mean_i (||g_i|| - 1)^2, mean_i ||g_i||), ||g_i|| over all values of sample i."""
    norms = torch.linalg.vector_norm(g.flatten(1), dim=1)
    return weight * (norms - 1.0).square().mean(), norms.detach().mean()


def squared_penalty(g: torch.Tensor, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight mean_i ||g_i||^2, mean_i ||g_i||)."""
    sq = g.flatten(1).square().sum(dim=1)
    return weight * sq.mean(), sq.detach().sqrt().mean()


def penalty_points(obj: Objective, x: torch.Tensor, fake: torch.Tensor, draws: dict) -> torch.Tensor:
    """Where wgan-gp and dragan evaluate D's input gradient (no graph to x or fake)."""
    if obj.loss == "wgan-gp":
        return interpolate(x.detach(), fake.detach(), draws["eps"])
    if obj.loss == "dragan":
        return perturb(x.detach(), draws["alpha"], draws["u"], obj.dragan_spread)
    raise ValueError(f"{obj.loss} has no penalty points")


def r1_real_pass(obj: Objective, D, x: torch.Tensor, inputs: dict | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """D(x) on the real batch with R1's penalty of its input gradient: (D(x), penalty, mean ||g||).
    The training step takes D's real-pass loss from the same output. `inputs`: D's other inputs
    for the real batch (its labels)."""
    out, g = input_gradients(D, x.detach().requires_grad_(True), inputs)
    pen, norm = squared_penalty(g, obj.r1_weight())
    return out, pen, norm


def gradient_penalty(obj: Objective, D, x: torch.Tensor, fake: torch.Tensor, draws: dict,
                     inputs: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """wgan-gp's or dragan's (penalty, mean ||g||), from a D call of its own at penalty_points.
    `inputs`: D's other inputs at the points (a conditional critic judges them with the real
    batch's labels, as gancu)."""
    points = penalty_points(obj, x, fake, draws).requires_grad_(True)
    _, g = input_gradients(D, points, inputs)
    return two_sided_penalty(g, obj.gp_weight)


def penalty(obj: Objective, D, x: torch.Tensor, fake: torch.Tensor, draws: dict | None = None,
            inputs: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(penalty, mean input-gradient norm) of a penalized objective, differentiable with respect
    to D's parameters: what the training step adds to D's loss (`inputs`: D's other inputs, the
    real batch's labels)."""
    if obj.loss == "r1":
        return r1_real_pass(obj, D, x, inputs)[1:]
    return gradient_penalty(obj, D, x, fake, draws or {}, inputs)


def draw_penalty_inputs(obj: Objective, x: torch.Tensor, generator: torch.Generator) -> dict:
    """The random draws of one D step's penalty: eps [B] (wgan-gp), alpha [B] and u like x
    (dragan), all U[0, 1)."""
    b = x.shape[0]
    kw = dict(generator=generator, device=x.device)
    if obj.loss == "wgan-gp":
        return {"eps": torch.rand(b, **kw).to(x.dtype)}
    if obj.loss == "dragan":
        return {"alpha": torch.rand(b, **kw).to(x.dtype), "u": torch.rand(x.shape, **kw).to(x.dtype)}
    return {}


DRAW_NAMES = {"wgan-gp": ("eps",), "dragan": ("alpha", "u")}


# ---- BEGAN ----------------------------------------------------------------------------------

def reconstruction_loss(D, v: torch.Tensor, inputs: dict | None = None) -> torch.Tensor:
    """BEGAN's L(v) = mean |D(v) - v| over all values (the gradient reaches v both ways);
    `inputs`: D's other inputs (labels)."""
    return (D(v, **(inputs or {})) - v).abs().mean()


def began_update(k: torch.Tensor, l_real: torch.Tensor, l_fake: torch.Tensor, gamma: float, lambda_k: float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(the next k, the convergence measure) from one D step's L(x) and L(fake)."""
    d = gamma * l_real - l_fake
    return (k + lambda_k * d).clamp(0.0, 1.0), l_real + d.abs()
