"""The scorecard: one objective through every capability of likelab (issue 15).

Each part is a module with three pure functions (the contract of the design's scorecard):
``units(objective, quick=...)`` lists the part's settings (JSON-ready dicts, each with a
``"setting"`` string), ``run(objective, unit, seed=...)`` computes one JSON-ready row (with
``"status"``: ``"ok"``, ``"failed"`` or ``"not applicable"``, and ``"reason"``), and
``summarise(rows)`` gives the part's entries of the summary row. Every random stream derives from
:func:`~likelab.scorecard.battery.stream_seed` of the setting's name; every setting and size lives
in :mod:`likelab.scorecard.battery`.

Parts: :mod:`~likelab.scorecard.properness` (with Bernardo's theorem for φ-rules,
:func:`~likelab.scorecard.properness.bernardo_verdict`), ``landscape``,
:mod:`~likelab.scorecard.efficiency` (ARE against log by theory),
:mod:`~likelab.scorecard.robustness` (gross-error sensitivity, bias under contamination,
breakdown) and ``classification``.
"""

from likelab.scorecard.battery import PARTS, stream_seed
from likelab.scorecard.properness import bernardo_verdict

__all__ = ["PARTS", "bernardo_verdict", "stream_seed"]
