"""rnnode studies: one reproducible study per claim, run by ``rnnode-study`` (see README.md).

A study is a module of this package defining ``run(ctx: Context) -> dict``; ``run_study`` runs it
into its own folder with config, metrics, figures and an HTML report, and ``sweep`` spreads
independent points over processes or a Dask cluster, resumably.
"""

from ._claims import format_claim as format_claim
from ._run import Context as Context
from ._run import atomic_write as atomic_write
from ._run import claims_hold as claims_hold
from ._run import describe as describe
from ._run import discover as discover
from ._run import one_thread as one_thread
from ._run import read_json as read_json
from ._run import run_folder as run_folder
from ._run import run_study as run_study
from ._run import seeded as seeded
from ._run import settings_for as settings_for
from ._run import write_json as write_json
from ._stats import MeanTest as MeanTest
from ._stats import bootstrap_interval as bootstrap_interval
from ._stats import bootstrap_test as bootstrap_test
from ._stats import holm as holm
from ._stats import mean_test as mean_test
from ._stats import minimum_detectable_effect as minimum_detectable_effect
from ._stats import sign_test as sign_test
from ._stats import spearman as spearman
from ._stats import t_interval as t_interval
from ._sweep import SweepError as SweepError
from ._sweep import point_key as point_key
from ._sweep import sweep as sweep
