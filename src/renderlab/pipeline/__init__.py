"""The render pipeline. Every status change is a function of :mod:`.lifecycle` (claim, progress,
complete, fail, cancel, release; the terminal transition and its ``AT_END`` hooks in ``finish``);
:mod:`.start` creates renders, :mod:`.run` runs a claimed piece, :mod:`.recover` is the
reconciler, :mod:`.embedded` and :mod:`.cluster` are the two ways pieces get run."""

# Features that act when a render ends register their AT_END hooks here, so every process that
# imports any of the pipeline (serve, render processes, Celery workers) runs them.
from renderlab.pipeline import webhook_outbox as _webhook_outbox

_webhook_outbox.register()
