"""One runner per stage, used by the notebooks at every size, by the CLI and by the tests.

=============  ===============================================  ============  =================
stage          runner                                           notebook      CLI
=============  ===============================================  ============  =================
build          :func:`~craft.stages.build.build_stage`          00            ``craft build``
probe          :func:`~craft.stages.probe.probe_stage`          01            ``craft probe``
lclr           :func:`~craft.stages.lclr.lclr_stage`            02            ``craft lclr``
r2l            :func:`~craft.stages.r2l.r2l_stage`              03, 05        ``craft r2l``
baselines      :func:`~craft.stages.baselines.baselines_stage`  04            ``craft baselines``
evaluate       :func:`~craft.stages.evaluate.evaluate_stage`    04            ``craft evaluate``
monitor        :func:`~craft.stages.monitor.monitor_stage`      06            ``craft monitor``
attacks        :func:`~craft.stages.attacks.attacks_stage`      07            ``craft attacks``
=============  ===============================================  ============  =================

Every runner takes a :class:`~craft.stages.common.Run` (:func:`open_run` of
:func:`~craft.stages.params.load_params`), writes under ``run_dir/<notebook stem>/`` (the run's
folder layout: :class:`~craft.stages.common.Run`) and returns a result with its flat ``.metrics``.
Each stage checks the identity of every upstream artifact it reads (the organism, the probe's layer,
the heads, the trained policies) and refuses a stale one with the keys that changed. To change a
setting without losing a run, branch it (:func:`~craft.stages.fork.fork_run`, ``craft fork``): in
the fork a stage makes again what the change invalidates and loads the rest.

The modules form layers, in notebook order, checked by import-linter (``pyproject.toml``): a module
imports only from the layers below it.

====  ==============================================================================================
5     ``attacks``, ``monitor``, ``evaluate`` (the consumers of trained policies)
4     ``baselines``, ``r2l``
3     ``lclr``
2     ``probe``, ``build``
1     ``completions`` (cached generation and judging, the service every stage uses)
0     ``common`` (the run, its folders, the worker pool) and ``fork``, then ``source`` and ``params``
====  ==============================================================================================
"""

from craft.stages.common import STAGES, Run, open_run
from craft.stages.params import Params, load_params, notebook_parameters, params_from_notebook
from craft.stages.source import Source, make_source

__all__ = ["STAGES", "Params", "Run", "Source", "load_params", "make_source", "notebook_parameters", "open_run",
           "params_from_notebook"]
