"""The continuous adjoint of an adaptive solve: ``torchdiffeq.odeint_adjoint`` (public API), one
sample interval at a time.

The gradient is that of a backward ODE solved to the adjoint tolerances: it approximates
backpropagation's to about the solver tolerance (docs/guide/adjoints.md). rnnode holds the step
budgets of the forward and the backward solve (through torchdiffeq's step callbacks; torchdiffeq's
own budget is an ``assert`` per output time, gone under ``python -O``) and always hands
torchdiffeq its ``adjoint_options`` (torchdiffeq cannot infer them for another
``adjoint_method``).
"""

from __future__ import annotations

import torch
from torchdiffeq import odeint_adjoint

from ._counting import _Counted
from ._diagnostics import ORDER, StepBudgetError, out_of_budget

__all__ = ["adjoint_by_interval"]


class _LeafSolve(torch.autograd.Function):
    """``run(*inputs)`` on leaf copies of its non-leaf inputs, its graph kept to itself.

    The continuous adjoint differentiates the field at every backward evaluation with
    ``torch.autograd.grad``, which walks everything reachable from the field's output: a field
    reading a row of another layer's output walks that layer's whole graph each time (quadratic
    in T). On leaf copies the walk stops at the copies; the gradients reach the originals here.
    """

    @staticmethod
    def forward(ctx, run, *inputs):
        with torch.enable_grad():
            leaves = [
                x if x.is_leaf else x.detach().requires_grad_(x.requires_grad) for x in inputs
            ]
            out = run(*leaves)
        ctx.graph = (out, leaves)
        return out.detach()

    @staticmethod
    def backward(ctx, grad):
        out, leaves = ctx.graph
        del ctx.graph
        wanted = [x for x in leaves if x.requires_grad]
        grads = iter(torch.autograd.grad(out, wanted, grad, allow_unused=True))
        return (None, *[next(grads) if x.requires_grad else None for x in leaves])


def adjoint_by_interval(
    func, y0, times, *, tally, method, rtol, atol, options, adjoint_kw, budget, user_set
):
    """``odeint_adjoint`` one sample interval at a time, each driven by its own path segment.

    The adjoint differentiates the field with respect to everything it reads at every evaluation;
    a field that reads the whole input path would carry a gradient the size of the path in the
    augmented state (memory and time growing with T). Interval by interval, each solve reads only
    its interval's coefficient rows, so memory stays flat in T: the stored states at the sample
    times are all that grows. ``func.segment(j)`` is the field on interval j, its
    ``path_tensors()`` the tensors it reads besides its parameters and, where it offers
    ``with_path_tensors(tensors)``, the same field reading other tensors (leaf copies, see
    ``_LeafSolve``).

    The step budgets, ``budget`` forward and ``adjoint_options["max_num_steps"]`` (default the
    same) for the whole backward solve, are counted here through torchdiffeq's step callbacks,
    not by torchdiffeq (whose budget is an ``assert`` per output time).

    Returns the states at ``times`` and the accepted steps per interval.
    """
    adjoint_kw = dict(adjoint_kw)
    backward = dict(adjoint_kw.pop("adjoint_options", None) or {})
    backward_budget = backward.pop("max_num_steps", None)
    if "adjoint_method" not in adjoint_kw or adjoint_kw["adjoint_method"] == method:
        backward = {**options, **backward}  # torchdiffeq's rule: the forward options carry over
    tally.step_budget = budget
    tally.backward_budget = budget if backward_budget is None else backward_budget
    backward_user_set = user_set or backward_budget is not None
    backward_method = adjoint_kw.get("adjoint_method", method)

    backward_rtol = adjoint_kw.get("adjoint_rtol", rtol)

    def on_backward_budget(t):
        error = out_of_budget(
            backward_method,
            tally.backward_budget,
            backward_user_set,
            times,
            t,
            None,
            what=" (the adjoint's backward solve)",
        )
        order = ORDER.get(backward_method, 5)
        if order <= 3:  # the likely cause: a low order at the tolerance (issue 20)
            error = StepBudgetError(
                f"{error}. {backward_method} is of order {order}, which needs many steps at "
                f"adjoint_rtol={float(backward_rtol):.3g}: use a higher-order adjoint_method "
                "such as dopri5, or a looser adjoint_rtol"
            )
        return error

    tally.on_backward_budget = on_backward_budget
    states, per_interval = [y0], []
    for j in range(times.shape[0] - 1):
        piece = func.segment(j) if hasattr(func, "segment") else func
        params = tuple(p for p in piece.parameters() if p.requires_grad)
        tensors = tuple(piece.path_tensors()) if hasattr(piece, "path_tensors") else ()
        before = tally.accepted

        def solve(field, y, span, extra, params=params):
            return odeint_adjoint(
                _Counted(field, tally, check_finite=True),
                y,
                span,
                rtol=rtol,
                atol=atol,
                method=method,
                options=options,
                adjoint_options=backward,
                adjoint_params=params + tuple(x for x in extra if x.requires_grad),
                **adjoint_kw,
            )[-1]

        span = times[j : j + 2]
        if hasattr(piece, "with_path_tensors") and torch.is_grad_enabled():
            n = len(tensors)

            def run(y, span, *rest, piece=piece, n=n, solve=solve):
                leaves = list(rest[:n])
                return solve(piece.with_path_tensors(leaves), y, span, leaves)

            y = _LeafSolve.apply(run, states[-1], span, *tensors, *params)
        else:
            y = solve(piece, states[-1], span, tensors)
        states.append(y)
        per_interval.append(tally.accepted - before)
    return torch.stack(states), per_interval
