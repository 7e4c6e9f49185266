"""Errors from torchdiffeq and scipy never leak raw (issue 20, items 5-7): the adjoint's step
budget is rnnode's StepBudgetError with and without ``python -O``, inapplicable adjoint and scipy
options are clear errors naming the option, and a budget spent on a tolerance too tight for a
low-order method says so instead of calling the system stiff."""

import subprocess
import sys

import pytest
import torch

import rnnode

_X = torch.randn(5, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _model(tau=1.0):
    torch.manual_seed(0)
    return rnnode.ODERNN(2, 3, tau=tau).double()


# Each case of issue 20, item 5, run in a fresh interpreter with and without -O (torchdiffeq's
# own budget is an ``assert``: an AssertionError with asserts on, nothing at all under -O).
_CASES = """
import sys
import torch
import rnnode

x = torch.randn(5, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
torch.manual_seed(0)
model = rnnode.ODERNN(2, 3).double()
torch.manual_seed(0)
stiff = rnnode.ODERNN(2, 3, tau=1e-5).double()
cases = {
    "forward budget": lambda: model.solve(
        x, method="dopri5", adjoint=True, options=dict(max_num_steps=3)
    ),
    "stiff": lambda: stiff.solve(x, method="dopri5", adjoint=True),
    "backward budget": lambda: model.solve(
        x, method="dopri5", adjoint=True,
        options=dict(adjoint_rtol=1e-12, adjoint_options=dict(max_num_steps=50)),
    ).output.sum().backward(),
}
for name, case in cases.items():
    try:
        case()
    except rnnode.StepBudgetError as err:
        print(name, "|", str(err).replace("\\n", " "))
    except BaseException as err:
        print(name, "|", "LEAKED", type(err).__name__, err)
    else:
        print(name, "|", "NO ERROR")
"""


@pytest.mark.slow  # subprocesses or long solves: seconds
@pytest.mark.parametrize("flags", [[], ["-O"]])
def test_the_adjoint_step_budget_is_a_step_budget_error_with_and_without_O(flags):
    run = subprocess.run(
        [sys.executable, *flags, "-c", _CASES], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(" | ", 1) for line in run.stdout.strip().splitlines())
    assert set(lines) == {"forward budget", "stiff", "backward budget"}, run.stdout
    assert "max_num_steps=3 set in options" in lines["forward budget"]
    assert "the system is stiff" in lines["stiff"]
    assert "default step budget of 1000 steps" in lines["stiff"]
    assert lines["backward budget"].startswith("dopri5 (the adjoint's backward solve) used up")


def test_adjoint_method_without_adjoint_options_runs_and_matches_backprop():
    """torchdiffeq refused: 'If `adjoint_method != method` then we cannot infer
    `adjoint_options`...'. The backward solve takes no forward options then."""
    grads = []
    for adjoint in (True, False):
        model = _model()
        options = dict(adjoint_method="adaptive_heun", adjoint_rtol=1e-4, adjoint_atol=1e-6)
        options = options if adjoint else None
        sol = model.solve(_X, method="dopri5", rtol=1e-9, atol=1e-10, adjoint=adjoint,
                          options=options)  # fmt: skip
        sol.output.sum().backward()
        grads.append(model.field(0).weight_hh.grad)
    # adaptive_heun's backward solve at adjoint_rtol 1e-4: the gradient to 2.3e-5 (measured).
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-4)


def test_a_low_order_adjoint_method_out_of_budget_says_so():
    """adaptive_heun (order 2) as the backward solve at adjoint_rtol 1e-9 on a benign field runs
    out of its budget; the error names the order and the way out, not only the budget."""
    options = dict(adjoint_method="adaptive_heun", adjoint_rtol=1e-9, adjoint_atol=1e-10,
                   adjoint_options=dict(max_num_steps=50))  # fmt: skip
    sol = _model().solve(_X, method="dopri5", adjoint=True, options=options)
    with pytest.raises(rnnode.StepBudgetError) as raised:
        sol.output.sum().backward()
    message = str(raised.value)
    assert message.startswith("adaptive_heun (the adjoint's backward solve) used up")
    assert "of order 2" in message and "adjoint_rtol=1e-09" in message
    assert "higher-order adjoint_method such as dopri5" in message


def test_the_adjoint_method_must_be_an_embedded_pair():
    with pytest.raises(ValueError, match=r"options\['adjoint_method'\]: expected an embedded pair"):
        _model().solve(_X, method="dopri5", adjoint=True, options=dict(adjoint_method="rk4"))


def test_adjoint_options_are_checked():
    with pytest.raises(ValueError, match=r"options\['adjoint_options'\]: \['grid'\] do not apply"):
        _model().solve(_X, method="dopri5", adjoint=True, options=dict(adjoint_options={"grid": 1}))
    with pytest.raises(TypeError, match=r"options\['adjoint_options'\]: expected a dict"):
        _model().solve(_X, method="dopri5", adjoint=True, options=dict(adjoint_options=3))


def test_an_unknown_scipy_solver_names_the_option_not_method():
    """scipy said: "`method` must be one of ..." (rnnode's `method` is 'scipy_solver')."""
    with torch.no_grad(), pytest.raises(ValueError) as info:
        _model().solve(_X, method="scipy_solver", options={"solver": "XYZ"})
    message = str(info.value)
    assert message.startswith("options['solver']: expected one of scipy's methods")
    assert "'XYZ'" in message and "'LSODA'" in message
    with torch.no_grad(), pytest.raises(TypeError, match=r"options\['solver'\]: expected one"):
        _model().solve(_X, method="scipy_solver", options={"solver": 3})


def test_a_low_order_method_at_a_tight_tolerance_says_so_not_stiff():
    """bosh3 at rtol 1e-9 on a benign field (tau = 1) used up its budget and was called stiff."""
    with pytest.raises(rnnode.StepBudgetError) as info:
        _model().solve(_X, method="bosh3", rtol=1e-9, atol=1e-12)
    message = str(info.value)
    assert "stiff" not in message.replace("not stiff", "")
    assert "bosh3 is of order 3, too low for rtol=1e-09" in message
    assert "use a higher-order method, dopri5" in message
    # dopri5 solves the same problem within the budget.
    _model().solve(_X, method="dopri5", rtol=1e-9, atol=1e-12)


def test_a_stiff_system_is_still_called_stiff():
    with pytest.raises(rnnode.StepBudgetError, match="the system is stiff"):
        _model(tau=1e-5).solve(_X, method="bosh3", rtol=1e-6)
