"""The render pipeline. Every status change is a function of :mod:`.lifecycle` (claim, progress,
complete, fail, cancel, release; the terminal transition and its ``AT_END`` hooks in ``finish``);
:mod:`.start` creates renders, :mod:`.run` runs a claimed piece, :mod:`.recover` is the
reconciler, :mod:`.embedded` and :mod:`.cluster` are the two ways pieces get run."""

# Features that act when a render ends register their ``AT_END`` hooks when imported; importing
# them with the package gives every process that can end a render (an API process, an embedded
# render process, a Celery worker) the same hooks.
from renderlab.pipeline import measure, retention  # noqa: F401
from renderlab.pipeline import webhook_outbox as _webhook_outbox

_webhook_outbox.register()
