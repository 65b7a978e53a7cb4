"""Numba kernels only: arrays in, arrays out; imports only numpy and numba.

Rules for every module in this package:

* No ``cv2``, ``skimage``, ``pandas`` or any I/O; only ``numpy`` and ``numba``.
* Every jitted function is decorated ``@numba.njit(cache=True, nogil=True)``
  (cached compilation, GIL released so joblib threads can run kernels concurrently).
  ``parallel=True`` and ``fastmath`` are never used: results are deterministic and
  bit-identical from run to run (parallelism lives one level up, one image per task).
  Some arithmetic kernels add ``error_model="numpy"``: IEEE division (no Python
  zero-division check, which blocks SIMD); used only where no division by zero can
  occur or its result is discarded, so values are unchanged.
* Public functions are thin, plain-Python wrappers that validate dtype / shape /
  contiguity (raising ``TypeError`` / ``ValueError``) and then call a jitted core
  (named ``_..._core`` or ``_..._nb``).  Dtype contracts are documented in each
  docstring and are strict: no silent conversions.

Modules: :mod:`.color`, :mod:`.stats`, :mod:`.glcm`, :mod:`.lbp`, :mod:`.shape`,
:mod:`.regional`.
"""
