"""KFP component for the cluster's run notification: the exit task, run however the run ended."""

from kfp import dsl

from components.common.config.knobs import documented
from components.common.config.run_settings import RunSettings
from components.container_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
@documented(RunSettings, more={"status": "how the run ended: its state and error, from KFP"})
def notify_run(status: dsl.PipelineTaskFinalStatus, source: str, model_name: str):
    """Posts the run's outcome to the webhook in $HEADSTART_NOTIFY_URL; without one, says how to set it."""
    from components.notify_run.core import run

    run(run_name=status.pipeline_job_resource_name, state=status.state, error=status.error_message,
        source=source, model_name=model_name)
