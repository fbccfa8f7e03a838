"""The one review pipeline: `review_stack(stack, steps) -> Review`.

Every command that needs a stack's plan, rendered objects, verdicts, capacity, cost or outputs
gets them here (`review`, `review --all` and `--base` through `review` processes, `readiness`,
`budget`, `generate`'s design diagram), asking only for the steps it needs; `cost` brings a
real plan (`pulumi preview --json`) to the same cost step (:func:`price_preview`):

    evaluate   the real program under Pulumi's mocks with the real stack file (always)
    render     every Helm release rendered by the real helm, and the team services Argo CD
               would sync (platformctl.rendering, platformctl.synced)
    verdicts   platform-guard's policies (platformctl.crossguard) and the rendered checks
               (platformctl.runtime_checks), which read what `render` made
    cost       the cost model over the plan (platformctl.pricing)

The pipeline knows what each check reads: a rendered check whose rendering was not asked for,
or failed (no helm, a chart helm refuses), is *not evaluated*, with the reason, in the verdicts:
never a pass. Asking a Review for a step it did not compute raises :class:`NotComputed` rather
than answering with nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.charts import ChartError
from platform_facts.costmodel import CostReport
from platformctl.crossguard import NOT_RENDERED, GuardReport, check_evaluation
from platformctl.harness import evaluate
from platformctl.helmbin import HelmNotFound
from platformctl.recording import Evaluation
from platformctl.rendering import RenderError
from platformctl.synced import SyncedError


@dataclass(frozen=True)
class Steps:
    """What a command asks of the pipeline (the evaluation always runs)."""

    render: bool = True
    verdicts: bool = True
    cost: bool = True


FULL = Steps()
COST_ONLY = Steps(render=False, verdicts=False, cost=True)
PLAN_ONLY = Steps(render=False, verdicts=False, cost=False)

# Why a rendering can fail: no helm binary, a vendored chart missing or altered, helm refusing
# the values, a gitops/ directory the root Application leads to that is broken.
RENDER_FAILURES = (HelmNotFound, ChartError, RenderError, SyncedError)


class NotComputed(Exception):
    """A Review was asked for a step its command did not ask the pipeline for."""


@dataclass
class Review:
    """One stack through the pipeline: what was computed, and why anything was not."""

    evaluation: Evaluation
    steps: Steps
    guard: GuardReport | None = None
    costs: CostReport | None = None
    # The rendering was asked for and failed: the exception (one line, naming the release,
    # chart or tool). The rendered checks are "not evaluated" with its message.
    render_failure: Exception | None = None

    @property
    def verdicts(self) -> GuardReport:
        if self.guard is None:
            raise NotComputed("the verdicts were not asked of the pipeline (Steps.verdicts)")
        return self.guard

    @property
    def cost(self) -> CostReport:
        if self.costs is None:
            raise NotComputed("the cost was not asked of the pipeline (Steps.cost)")
        return self.costs

    def document(self) -> dict[str, Any]:
        """The review document (platformctl.review): needs verdicts and cost."""
        from platformctl import review

        return review.build_document(self.evaluation, self.verdicts, self.cost)


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def review_evaluation(evaluation: Evaluation, steps: Steps = FULL,
                      progress: Progress = _quiet,
                      render_failure: Exception | None = None) -> Review:
    """The steps after the evaluation, over an evaluation already made (the tests share one
    per real stack; a rendering already done is not redone). `render_failure`: the rendering
    is known to be impossible (no helm) and is not tried."""
    from platformctl import rendering
    from platformctl.pricing import cost_report

    result = Review(evaluation, steps, render_failure=render_failure)
    if steps.render and not evaluation.is_rendered and render_failure is None:
        progress(f"rendering {len(evaluation.of_type(rendering.RELEASE_TYPE))} Helm releases "
                 f"with helm ({len(evaluation.resources)} resources evaluated)")
        try:
            rendering.render(evaluation)
        except RENDER_FAILURES as exc:
            result.render_failure = exc
    if steps.verdicts:
        progress("running platform-guard's policies" + (" and pricing" if steps.cost else ""))
        result.guard = check_evaluation(evaluation, not_rendered=(
            NOT_RENDERED if result.render_failure is None
            else f"the Helm releases could not be rendered: {result.render_failure}"))
    if steps.cost:
        result.costs = cost_report(evaluation)
    return result


def review_stack(stack: str | Path, project_dir: Path | None = None, steps: Steps = FULL,
                 progress: Progress = _quiet) -> Review:
    """Evaluate one stack offline (`dev`, `prod` or a stack file) and run the asked-for steps.

    Raises ConfigError (a bad stack file or config) and InputCheckError (inputs the provider
    would refuse) from the evaluation; a failed rendering is recorded on the Review instead."""
    failure: Exception | None = None
    if steps.render:
        from platformctl import helmbin

        try:
            helmbin.binary()  # no helm: known before the evaluation, not after it
        except HelmNotFound as exc:
            failure = exc
    progress(f"evaluating {stack} (the program under Pulumi mocks)")
    evaluation = evaluate(stack, project_dir=project_dir)
    return review_evaluation(evaluation, steps, progress, failure)


def price_preview(path: Path, region: str | None = None) -> dict[str, Any]:
    """A real plan, `pulumi preview --json` with credentials, through the cost step: the
    resources it plans priced by the same cost model as an offline review's, expected and at
    the ceiling (the report's dict form). (Its verdicts are CrossGuard's own, from
    `pulumi preview --policy-pack`.)"""
    from platform_facts.costmodel import priced_both_ways
    from platformctl import realruns

    inputs, region = realruns.preview_plan(path, region)
    return priced_both_ways(inputs, region)
