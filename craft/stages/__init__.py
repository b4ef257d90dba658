"""One runner per stage, used by the notebooks at both scales, by the CLI and by the tests.

=============  ============================================  ============  =================
stage          runner                                        notebook      CLI
=============  ============================================  ============  =================
build          :func:`~craft.stages.build.build_stage`       00            ``craft build``
probe          :func:`~craft.stages.probe.probe_stage`       01            ``craft probe``
lclr           :func:`~craft.stages.lclr.lclr_stage`         02            ``craft lclr``
r2l            :func:`~craft.stages.r2l.r2l_stage`           03, 05        ``craft r2l``
baselines      :func:`~craft.stages.baselines.baselines_stage`  04         ``craft baselines``
evaluate       :func:`~craft.stages.evaluate.evaluate_stage`  00, 04, 05   ``craft evaluate``
monitor        :func:`~craft.stages.monitor.monitor_stage`   06            ``craft monitor``
attacks        :func:`~craft.stages.attacks.attacks_stage`   07            ``craft attacks``
=============  ============================================  ============  =================

Every runner takes a :class:`~craft.stages.common.Run` (:func:`open_run` of
:func:`~craft.stages.params.load_params`) and writes under ``run_dir/<notebook stem>/``.
"""

from craft.stages.common import STAGES, Run, make_source, open_run
from craft.stages.params import Params, load_params, params_from_notebook

__all__ = ["STAGES", "Params", "Run", "load_params", "make_source", "open_run", "params_from_notebook"]
