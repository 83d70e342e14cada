"""Figures (and the seed walkthrough report) built from likelab's results.

:func:`plot_landscape`, :func:`plot_underflow` and :func:`plot_properness` return a
:class:`matplotlib.figure.Figure` and save it when given a path; nothing is shown or printed.
"""

from __future__ import annotations

from likelab.report.figures import plot_landscape, plot_properness, plot_underflow

__all__ = ["plot_landscape", "plot_properness", "plot_underflow"]
