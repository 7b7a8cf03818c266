"""Thread count of the BLAS behind numpy for many small products.

OpenBLAS threads busy-wait between calls; for GEMMs of a few million flops
(e.g. the 64-wide digits network over 1438 samples) waking them costs more
than the product, and on a loaded machine a call can take 50x its
single-thread time. :func:`small_gemms` runs a block single-threaded when the
work per product is below a threshold; big products keep every thread.
threadpoolctl (a small, well-kept library also used by scikit-learn) does the
switching: it talks to whichever BLAS numpy loaded.
"""
from contextlib import nullcontext

#: flops per GEMM below which one thread is faster than waking the pool (measured, 2-core EPYC)
SMALL_GEMM_FLOPS = 3e7
_controller = None


def small_gemms(flops_per_gemm):
    """Context manager: BLAS limited to one thread when ``flops_per_gemm`` is small."""
    global _controller
    if flops_per_gemm >= SMALL_GEMM_FLOPS:
        return nullcontext()
    if _controller is None:
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
