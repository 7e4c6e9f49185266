"""Gradient flow through time and depth: error-signal norms, depth Jacobians, gradient paths.

On the way down, the error signal dLoss/dh_t^l is multiplied by one Jacobian per layer and per
step, so its norm shrinks or grows exponentially with depth and time (vanishing and exploding
gradients; Bengio, Simard and Frasconi 1994, IEEE Trans. Neural Netw. 5(2), 157-166). With skip
connections the signal splits over many paths: with offsets (1, 2) the number of paths from layer
L down to layer 1 is the Fibonacci number F_L.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from rnnode import ODERNN
from rnnode._validate import check_bool, check_positive

from ._common import check_model
from .jacobians import _check_model, jacobian

__all__ = [
    "count_gradient_paths",
    "depth_jacobian",
    "depth_singular_values",
    "gradient_norms",
]


def gradient_norms(
    model: ODERNN,
    x: torch.Tensor,
    loss_fn: Callable[..., torch.Tensor],
    hx: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
    *,
    full_state: bool = False,
    **solve_kwargs,
) -> torch.Tensor:
    """||dLoss/dh_t^l|| for every layer l and sample time t, from one backward pass.

    The total derivative of the loss with respect to layer l's state at time t_k (through all
    later times and layers), from ``Solution.state_gradients``; the norm runs over directions,
    batch and units. Works for both couplings and any cell.

    Arguments:
        model: an ``ODERNN``.
        x: the input, as for ``model.solve``.
        loss_fn: ``loss_fn(output, h_n) -> scalar``, applied to the model's outputs.
        hx: initial state, as for ``model.solve``.
        full_state: take the norm over the whole state (LSTM: h and c) instead of h only.
        **solve_kwargs: passed to ``model.solve`` (``coupling``, ``method``, ``step_size``,
            ``t``, ...; a fixed-step method is needed).

    Returns:
        (num_layers, T + 1) tensor; column 0 is the initial state at t_0.
    """
    check_model(model)
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn: expected a function (output, h_n) -> scalar tensor, got "
            f"{type(loss_fn).__name__}"
        )
    full_state = check_bool("full_state", full_state)
    solution = model.solve(x, hx, track_state_gradients=True, **solve_kwargs)
    loss = loss_fn(solution.output, solution.h_n)
    if not isinstance(loss, torch.Tensor):
        raise TypeError(
            f"loss_fn: expected a function returning a scalar tensor, got {type(loss).__name__}"
        )
    if loss.numel() != 1:
        raise ValueError(
            f"loss_fn: expected a scalar tensor (one element), got {tuple(loss.shape)}"
        )
    grads = solution.state_gradients(loss, retain_graph=False).detach()
    if not full_state:
        grads = grads[..., : model.hidden_size]
    if grads.dim() == 4:  # unbatched input: (L, D, T + 1, S)
        grads = grads.unsqueeze(3)
    return grads.permute(0, 2, 1, 3, 4).flatten(2).norm(dim=-1)


def depth_jacobian(
    model: ODERNN, h: torch.Tensor, x: torch.Tensor, dt: float = 1.0
) -> torch.Tensor:
    """Total derivatives dh^l/dh^j through depth within one step: the blocks of (I - N)^{-1}.

    Within one sample step of the discrete stack, layer l reads the layers below it at the same
    step, h^l = h^l_prev + dt F_l(h^l_prev, h^{l-1}, ...), so dh^l/dh^j = dt dF_l/dh_j for a source
    j < l. N = dt * (strictly lower block part of J), J the joint field's Jacobian, collects these
    one-layer Jacobians; the total derivative sums the products along every path of sources,
    (I - N)^{-1} = I + N + N^2 + ... (N is nilpotent). With ``dt = 1`` and tau = 1 these are the
    discrete RNN's d h_t^l / d h_t^j (Euler with step tau is the discrete cell).

    Notes:
        Every Jacobian is taken with all layers at ``h`` (own state and sources alike). In the
        discrete stack layer l's own state is the previous step's and its sources the current
        step's; the two agree at a fixed point, and for linear cells everywhere.

    Arguments:
        model: a unidirectional ``ODERNN``.
        h: (..., num_layers, state_size) the states where the Jacobians are taken.
        x: (..., input_size) the input.
        dt: the step size.

    Returns:
        (..., num_layers, num_layers, state_size, state_size): block [l, j] = dh^l/dh^j.
    """
    _check_model(model)
    dt = check_positive("dt", dt)
    L, S = model.num_layers, model.layers[0].state_size
    J = jacobian(model, h, x)
    lead = J.shape[:-2]
    blocks = J.reshape(*lead, L, S, L, S).transpose(-3, -2)  # (..., L, L, S, S)
    lower = torch.ones(L, L, dtype=torch.bool, device=J.device).tril(-1)
    N = dt * blocks * lower[:, :, None, None]
    total = N.new_zeros(N.shape)
    eye = torch.eye(S, dtype=J.dtype, device=J.device)
    # Row l of (I - N)^{-1}: T[l, j] = delta_lj I + sum_{k < l} N[l, k] T[k, j], bottom up.
    rows: list[torch.Tensor] = []
    for l in range(L):
        row = torch.zeros_like(total[..., 0, :, :, :])
        row[..., l, :, :] = eye
        for k in range(l):
            row = row + torch.einsum("...ab,...jbc->...jac", N[..., l, k, :, :], rows[k])
        rows.append(row)
    return torch.stack(rows, dim=-4)


def depth_singular_values(
    model: ODERNN, h: torch.Tensor, x: torch.Tensor, dt: float = 1.0
) -> torch.Tensor:
    """Singular values of the Jacobian products through depth, dh^l/dh^1 for l = 1..L.

    For the plain stack dh^l/dh^1 = D_l ... D_2 with D_l = dt dF_l/dh_{l-1}; in general the sum
    over all paths of sources (see ``depth_jacobian``). Their singular values grow or shrink
    roughly exponentially with depth.

    Arguments:
        model, h, x, dt: as for ``depth_jacobian``.

    Returns:
        (..., num_layers, state_size) singular values in decreasing order (row 0: the identity).
    """
    return torch.linalg.svdvals(depth_jacobian(model, h, x, dt)[..., :, 0, :, :])


def count_gradient_paths(num_layers: int, skips: Sequence[int] = (1, 2)) -> int:
    """Number of paths from layer ``num_layers`` down to layer 1 along the skip connections.

    Layer l reads layers l - s for s in ``skips``; a path steps down by one offset at a time and
    must land on layer 1 (offsets reaching below layer 1 read the input and end no path):
    c_1 = 1, c_l = sum_{s in skips, l - s >= 1} c_{l-s}. For skips (1, 2) this is the Fibonacci
    number F_L (F_1 = F_2 = 1).

    Arguments:
        num_layers: L, the top layer (1-based).
        skips: distinct positive integer offsets.

    Returns:
        c_L.
    """
    # The core's own checks of num_layers and skips, and its source rule (ODERNN.sources:
    # offsets below layer 1 read the input, index -1), on a throwaway 1-unit stack.
    if not isinstance(skips, Sequence) or isinstance(skips, str):
        raise TypeError(f"skips: expected a sequence of positive integer offsets, got {skips!r}")
    stack = ODERNN(1, 1, num_layers, skips=tuple(skips))
    counts = [1]  # counts[l] for 0-based l: one path from layer 1 to itself
    for layer in range(1, num_layers):
        counts.append(sum(counts[j] for j in stack.sources(layer) if j >= 0))
    return counts[num_layers - 1]
