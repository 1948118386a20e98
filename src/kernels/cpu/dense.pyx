"""Dense layer passes: z = x @ w + b, y = act(z), and the backward pass from dy.

GEMMs go through the CPU-dispatched core of ``gemm`` with stride arguments, so the
transposes of the backward pass (x^T dz, dz w^T) cost no copy.
Arguments arrive validated from ``kernels.cpu.backend``.
"""
from cython cimport floating

from kernels.cpu.gemm cimport sgemm, dgemm, sgemm_ep, dgemm_ep, gemm_threads
from kernels.cpu.elementwise cimport (activate_f32, activate_f64, backprop_colsum_f32,
                                      backprop_colsum_f64)


cdef inline void _gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                       const floating* b, Py_ssize_t rsb, Py_ssize_t csb,
                       floating* c, Py_ssize_t rsc, Py_ssize_t csc) noexcept nogil:
    """c = a @ b (alpha 1, beta 0) with the thread count this size deserves."""
    cdef int nt = gemm_threads(m, n, k, floating is float)
    if floating is float:
        sgemm(m, n, k, 1, a, rsa, csa, b, rsb, csb, 0, c, rsc, csc, nt)
    else:
        dgemm(m, n, k, 1, a, rsa, csa, b, rsb, csb, 0, c, rsc, csc, nt)


cdef inline void _activate(int act, double param, const floating* x, floating* y,
                           Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    if floating is float:
        activate_f32(act, param, x, y, rows, cols)
    else:
        activate_f64(act, param, x, y, rows, cols)


def forward(int act, double param, const floating[:, :] x, const floating[:, :] w,
            const floating[::1] b, floating[:, ::1] out, floating[:, ::1] pre):
    """out = act(x @ w + b); z = x @ w + b also kept in ``pre`` when it is not None.

    One pass: the GEMM adds the bias and applies the activation to each block of z as
    soon as it is complete (sgemm_ep); only a softmax the GEMM could not give whole rows
    to one thread is applied afterwards.
    """
    cdef Py_ssize_t n = x.shape[0], n_in = x.shape[1], units = w.shape[1]
    cdef Py_ssize_t isz = sizeof(floating)
    cdef floating* y = &out[0, 0]
    cdef floating* z = &pre[0, 0] if pre is not None else y
    cdef const floating* pb = &b[0] if b is not None else NULL
    cdef int nt = gemm_threads(n, units, n_in, floating is float)
    cdef int done
    with nogil:
        if floating is float:
            done = sgemm_ep(n, units, n_in, &x[0, 0], x.strides[0] // isz,
                            x.strides[1] // isz, &w[0, 0], w.strides[0] // isz,
                            w.strides[1] // isz, z, units, pb, act, param, y, units, nt)
        else:
            done = dgemm_ep(n, units, n_in, &x[0, 0], x.strides[0] // isz,
                            x.strides[1] // isz, &w[0, 0], w.strides[0] // isz,
                            w.strides[1] // isz, z, units, pb, act, param, y, units, nt)
        if not done:
            _activate(act, param, z, y, n, units)


def backward(int act, double param, const floating[:, ::1] dy, const floating[:, :] x,
             const floating[:, :] w, const floating[:, ::1] saved, floating[:, ::1] dz,
             floating[:, :] dx, floating[:, :] dw, floating[::1] db):
    """dz = dy * act'(.) (scratch) and db = column sums of dz in one pass, then
    dw = x^T dz and dx = dz w^T (transposes as strides, no copies).

    ``dx``/``db`` may be None (not needed / no bias).
    """
    cdef Py_ssize_t n = dy.shape[0], units = dy.shape[1], n_in = x.shape[1]
    cdef Py_ssize_t isz = sizeof(floating)
    cdef floating* pdz = &dz[0, 0]
    cdef floating* pdb = &db[0] if db is not None else NULL
    cdef bint want_dx = dx is not None
    cdef floating* pdx = &dx[0, 0] if want_dx else NULL
    cdef Py_ssize_t rsdx = dx.strides[0] // isz if want_dx else 0
    cdef Py_ssize_t csdx = dx.strides[1] // isz if want_dx else 0
    with nogil:
        if floating is float:
            backprop_colsum_f32(act, param, &dy[0, 0], &saved[0, 0], pdz, pdb, n, units)
        else:
            backprop_colsum_f64(act, param, &dy[0, 0], &saved[0, 0], pdz, pdb, n, units)
        # dw (n_in, units) = x^T (n_in, n) @ dz (n, units): x^T is x with strides swapped
        _gemm(n_in, units, n, &x[0, 0], x.strides[1] // isz, x.strides[0] // isz,
              pdz, units, 1, &dw[0, 0], dw.strides[0] // isz, dw.strides[1] // isz)
        if want_dx:
            # dx (n, n_in) = dz (n, units) @ w^T (units, n_in)
            _gemm(n, n_in, units, pdz, units, 1, &w[0, 0], w.strides[1] // isz,
                  w.strides[0] // isz, pdx, rsdx, csdx)
