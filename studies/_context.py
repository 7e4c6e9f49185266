"""What a study's ``run`` gets: the ``Context`` (settings, folder, figures, claims, sweeps), and the
small helpers the studies share (``settings_for``, ``train_with``)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

import rnnode

from ._claims import COMPARISONS, finding_record, holm_adjust, verification_record
from ._io import atomic_write, plain
from ._report import FigureRecord
from ._stats import bootstrap_test, mean_test
from ._sweep import sweep

_T = TypeVar("_T")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def settings_for(
    quick: bool, full: Mapping[str, Any], quick_overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """A study's settings: ``full``, or ``full`` with ``quick_overrides`` replacing some values.

    The quick setting is written as what it changes, so the two cannot drift apart silently.
    Every key of ``quick_overrides`` must be a key of ``full``.
    """
    unknown = set(quick_overrides) - set(full)
    if unknown:
        raise ValueError(
            f"quick_overrides: expected keys of the full settings, got {sorted(unknown)}"
        )
    return {**full, **quick_overrides} if quick else dict(full)


def train_with(model: Any, task: Any, settings: Mapping[str, Any], seed: int) -> dict:
    """``rnnode.training.train`` with a study's ``steps``, ``lr`` and ``batch_size`` settings, no
    bar."""
    return rnnode.training.train(
        model,
        task,
        steps=settings["steps"],
        lr=settings["lr"],
        batch_size=settings["batch_size"],
        seed=seed,
        progress=False,
    )


@dataclass
class Context:
    """What a study's ``run`` gets: its settings, its folder and the ways to record results.

    Attributes:
        name: the study's name.
        folder: the folder the run writes into (exists; see ``run_study``: a staging folder that
            replaces ``OUT/<name>/`` when the run completes).
        quick: the small, fast setting (seconds; used by the tests).
        seed: the run's seed (already applied to random, numpy and torch).
        workers: processes for sweeps (None: one per CPU; 1: in this process).
        scheduler: address of a Dask distributed scheduler for sweeps (None: local processes).
        show_progress: whether ``progress`` draws bars.
    """

    name: str
    folder: Path
    quick: bool = False
    seed: int = 0
    workers: int | None = None
    scheduler: str | None = None
    show_progress: bool = True
    figures: list[FigureRecord] = field(default_factory=list)
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweeps: dict[str, dict[str, int]] = field(default_factory=dict)

    def figure(
        self,
        name: str,
        fig: Any,
        *,
        caption: str = "",
        numbers: Mapping[str, Any] | None = None,
    ) -> Path:
        """Save a matplotlib figure as ``<name>.png`` and ``<name>.pdf`` in the run's folder.

        Arguments:
            name: file stem (letters, digits, ``_`` and ``-``), unique within the run.
            fig: a ``matplotlib.figure.Figure`` (build it with the ``Figure`` API: no pyplot
                state, no display needed).
            caption: what the figure shows, for the report.
            numbers: the numbers the figure illustrates, shown beside it in the report.

        Returns:
            The PNG's path.
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"name: expected letters, digits, '_' or '-' (a file stem), got {name!r}"
            )
        if any(f.name == name for f in self.figures):
            raise ValueError(f"name: figure {name!r} was already saved in this run")
        # No creation date in the PDF and a fixed PNG software tag: reruns give equal files.
        for fmt, meta in (("png", {"Software": "rnnode"}), ("pdf", {"CreationDate": None})):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=150, metadata=meta)
            atomic_write(self.folder / f"{name}.{fmt}", buffer.getvalue())
        self.figures.append(FigureRecord(name, caption, plain(dict(numbers or {}), "numbers")))
        return self.folder / f"{name}.png"

    def _record(self, name: str, record: dict[str, Any]) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"name: expected letters, digits, '_' or '-', got {name!r}")
        if name in self.claims:
            raise ValueError(f"name: claim {name!r} was already recorded in this run")
        self.claims[name] = record

    def verify(
        self,
        name: str,
        holds: bool,
        statement: str,
        *,
        value: float | None = None,
        bound: float | None = None,
    ) -> bool:
        """Record a *verification*: a computation matched its reference (a formula, a theorem).

        Labelled as a verification in the report and never summarised as a finding; the same
        check belongs in ``tests/``. Returns ``holds`` as a bool.
        """
        self._record(name, verification_record(statement, holds, value=value, bound=bound))
        return bool(holds)

    def verify_over_seeds(
        self,
        name: str,
        statement: str,
        samples: Sequence[float],
        *,
        comparison: str,
        bound: float,
    ) -> bool:
        """Record a *verification* measured over seeds: something true by construction (a
        theorem, an objective's optimum, what mean field predicts far from the critical point)
        checked on the mean of ``samples``: it holds when ``mean <comparison> bound``.

        No test and no verdict: it cannot come out the other way, so it is not a finding and is
        not counted as one. Returns whether it holds.
        """
        if comparison not in COMPARISONS:
            raise ValueError(
                f"comparison: expected one of {tuple(COMPARISONS)}, got {comparison!r}"
            )
        values = np.asarray(samples, dtype=np.float64)
        if values.size == 0 or not np.isfinite(values).all():
            raise ValueError(f"samples: expected finite numbers, got {values.tolist()}")
        mean = float(values.mean())
        holds = COMPARISONS[comparison](mean, float(bound))
        return self.verify(
            name,
            holds,
            f"{statement} (mean over {values.shape[0]} seeds {comparison} {float(bound):.4g})",
            value=mean,
            bound=bound,
        )

    def finding(
        self,
        name: str,
        statement: str,
        *,
        value: float,
        comparison: str,
        bound: float,
        interval: Sequence[float],
        control: float | None,
        control_label: str,
        seeds: int,
        test: str = "interval given by the study",
        p_value: float | None = None,
        mde: float | None = None,
        effect: float | None = None,
        same_test: bool = False,
    ) -> str:
        """Record a *finding*, a pre-registered comparison with its evidence; return its verdict.

        Prefer ``finding_over_seeds`` (a mean over seeds, or over seeds and test items) and
        ``finding_bootstrap`` (another statistic): their interval, p-value and MDE come from one
        test.

        Arguments:
            name: short identifier, unique within the run.
            statement: the claim in words.
            value: the measured statistic (for example the mean over seeds).
            comparison, bound: the rule, fixed before the data: ``value <comparison> bound``
                with ``comparison`` one of ``">", ">=", "<", "<="``.
            interval: the value's 95% interval (``rnnode.studies.mean_test``,
                ``bootstrap_test`` or an exact test's).
            control, control_label: the control's value and what it is (untrained network,
                shuffled layers, baseline).
            seeds: the number of seeds behind the value.
            test, p_value: the test behind the interval, and its p-value where it has one.
            mde: the minimum detectable effect (default: from the interval's width, read as a
                t interval on ``seeds - 1`` df; ``_claims.interval_mde``).
            effect: the smallest departure from the bound that matters (the rule's margin);
                without it an inconclusive finding reads "underpowered".
            same_test: ``p_value`` comes from the interval's own test (they must agree).

        Every finding recorded updates the Holm-adjusted p-values of all the run's findings
        (``p_holm``; ``_claims.holm_adjust``).

        Returns:
            ``"supported"``, ``"not supported"`` or ``"inconclusive"`` (see ``_claims``).
        """
        record = finding_record(
            statement,
            value=value,
            comparison=comparison,
            bound=bound,
            interval=interval,
            control=control,
            control_label=control_label,
            seeds=seeds,
            test=test,
            p_value=p_value,
            mde=mde,
            effect=effect,
            same_test=same_test,
        )
        self._record(name, record)
        holm_adjust(self.claims)
        return record["verdict"]

    def finding_over_seeds(
        self,
        name: str,
        statement: str,
        samples: Sequence[float] | np.ndarray,
        *,
        comparison: str,
        bound: float,
        control: float | None,
        control_label: str,
        effect: float | None = None,
    ) -> str:
        """Record a finding whose value is a mean over seeds; return the verdict.

        ``samples`` is (seeds,), one number per seed, or (seeds, items), every seed's score on
        each item of one fixed test split (then test-set sampling error enters too: seeds and
        items are crossed random factors). The interval, the two-sided p-value of
        ``mean = bound`` and the MDE all come from one Student-t test
        (``rnnode.studies.mean_test``), so the verdict is conclusive exactly when p < 0.05.
        ``effect``: the smallest departure from the bound that matters (see ``finding``).
        """
        result = mean_test(samples, bound)
        return self.finding(
            name,
            statement,
            value=result.value,
            comparison=comparison,
            bound=bound,
            interval=result.interval,
            control=control,
            control_label=control_label,
            seeds=int(np.shape(samples)[0]),
            test=f"{result.method}, df {result.df:.3g}",
            p_value=result.p_value,
            mde=result.mde,
            effect=effect,
            same_test=True,
        )

    def finding_bootstrap(
        self,
        name: str,
        statement: str,
        samples: Sequence[float] | np.ndarray,
        statistic: Callable[[np.ndarray], float],
        *,
        comparison: str,
        bound: float,
        control: float | None,
        control_label: str,
        effect: float | None = None,
    ) -> str:
        """Record a finding whose value is ``statistic(samples)``, not a mean (a median, a
        refitted curve's parameter from seed indices); return the verdict.

        Interval and p-value from one BCa bootstrap (``rnnode.studies.bootstrap_test``, fixed
        resampling seed); the MDE from the interval's width (``_claims.interval_mde``).
        """
        values = np.asarray(samples, dtype=np.float64)
        estimate, interval, p = bootstrap_test(values, statistic, bound)
        return self.finding(
            name,
            statement,
            value=estimate,
            comparison=comparison,
            bound=bound,
            interval=interval,
            control=control,
            control_label=control_label,
            seeds=values.size,
            test="BCa bootstrap over seeds",
            p_value=p,
            effect=effect,
            same_test=True,
        )

    def progress(self, iterable: Iterable[_T], desc: str, total: int | None = None) -> Iterable[_T]:
        """``iterable`` with a tqdm progress bar (on stderr) labelled ``study: desc``."""
        return tqdm(
            iterable,
            desc=f"{self.name}: {desc}",
            total=total,
            disable=not self.show_progress,
            leave=False,
        )

    def sweep(
        self, fn: Callable[[dict], Any], points: Sequence[Mapping], *, name: str = "sweep"
    ) -> list:
        """Run ``fn`` over ``points`` with ``rnnode.studies._sweep.sweep`` on this run's workers or
        scheduler, each point's result kept in ``<folder>/<name>/`` (a rerun skips done points).

        How many points were reused and computed goes to ``sweeps[name]`` (then to the run's
        ``config.json`` and a line on stderr).
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"name: expected a folder name (letters, digits, _ or -), got {name!r}"
            )
        if name in self.sweeps:
            raise ValueError(f"name: sweep {name!r} was already run in this run")
        counts: dict[str, int] = {}
        results = sweep(
            fn,
            points,
            self.folder / name,
            workers=self.workers,
            scheduler=self.scheduler,
            desc=f"{self.name}: {name}",
            progress=self.show_progress,
            counts=counts,
        )
        self.sweeps[name] = counts
        return results
