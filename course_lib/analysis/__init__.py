"""Analyses of any ``torch.nn.Module``, each checked against a case with a known answer.

- :mod:`~course_lib.analysis.hessian`: Hessian-vector products, top/bottom eigenvalues,
  per-batch max-eigenvalue spectra (C3, C4), trace and spectral density.
- :mod:`~course_lib.analysis.spectra`: per-batch spectra with their cost and the top
  eigenvector's split over parameter groups; both ends and the paper's top-k by magnitude.
- :mod:`~course_lib.analysis.landscape`: filter-normalised 1-D/2-D loss surfaces.
- :mod:`~course_lib.analysis.curvature`: loss rises, the official L2 term and ``dᵀHd`` along
  filter-normalised directions.
- :mod:`~course_lib.analysis.features`: every block's feature map in one hooked forward pass.
- :mod:`~course_lib.analysis.spectral`: FFT frequencies, band masks and log amplitudes (shared).
- :mod:`~course_lib.analysis.fourier`: Δ log amplitude of feature maps (C5).
- :mod:`~course_lib.analysis.robustness`: band-limited noise and accuracy drops (C6).
- :mod:`~course_lib.analysis.variance`: feature-map variance over depth (C7).
- :mod:`~course_lib.analysis.depth_profiles`: what each block changes, by kind of block (C5, C7).
- :mod:`~course_lib.analysis.lesion`: remove one residual unit at a time (C8).
- :mod:`~course_lib.analysis.toy`: 2-D toy losses with exact Hessians for teaching.
- :mod:`~course_lib.analysis.batches`: how they all read data (one batch, a list of batches or a
  DataLoader) and refuse inputs with NaN or inf.

Import from the submodules (``from course_lib.analysis.hessian import top_eigenvalues``); this
package imports nothing eagerly so that ``import course_lib`` stays fast.
"""
