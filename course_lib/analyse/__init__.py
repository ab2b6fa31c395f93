"""Analyse any image classifier with the paper's diagnostics: ``python -m course_lib analyse``.

- :mod:`~course_lib.analyse.models`: a model from a spec (``timm:NAME``, ``torchvision:NAME`` or
  a registered course model), with local weights or pretrained ones.
- :mod:`~course_lib.analyse.run`: the diagnostics (Hessian spectrum, loss surfaces, Fourier
  Δ log amplitude, feature-map variance, band-limited noise) at a profile's sizes.
- :mod:`~course_lib.analyse.report`: figures, ``results.json`` and a one-page ``report.html``.

timm is optional (``pip install course_lib[timm]``) and imported only for ``timm:`` specs.
"""

from course_lib.analyse.command import analyse

__all__ = ["analyse"]
