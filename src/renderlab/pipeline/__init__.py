"""The render pipeline. Every status change is a function of :mod:`.lifecycle` (claim, progress,
complete, fail, cancel, release; the terminal transition and its ``AT_END`` hooks in ``finish``);
:mod:`.start` creates renders, :mod:`.run` runs a claimed piece, :mod:`.recover` is the
reconciler, :mod:`.embedded` and :mod:`.cluster` are the two ways pieces get run."""
