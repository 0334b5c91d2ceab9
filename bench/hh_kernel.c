/* Hardware reference for the batched-throughput benchmark: the classic HH model
 * advanced with the same closed-form exponential-Euler (Rush–Larsen) step as
 * hhjax.simulate_population / hhjax.ExponentialEuler, N neurons (one g_na each),
 * OpenMP over neurons, each neuron's state in registers for the whole run.
 *
 * Built by bench/run.py:  gcc -O3 -march=native -fopenmp -shared -fPIC
 *   -DREAL=double -o hh_kernel_f64.so hh_kernel.c   (and -DREAL=float)
 *
 * Units: mV, ms, µA/cm², mS/cm², µF/cm². Step current `amp` for t_on <= t < t_off.
 * v_out has shape (N, n_saves) with n_saves = n_steps / stride + 1.
 */
#include <math.h>

#ifndef REAL
#define REAL double
#endif

#if REAL_IS_FLOAT
#define EXP expf
#else
#define EXP exp
#endif

static inline REAL exprel_inv(REAL u) { /* u / (1 - exp(-u)), finite at 0 */
    if (fabs((double)u) < (REAL)1e-3) return (REAL)1 + u / 2 + u * u / 12;
    return u / ((REAL)1 - EXP(-u));
}

void hh_run(long n_neurons, const REAL *g_na, const REAL *y0 /* (4, N): v m h n */,
            REAL dt, long n_steps, long stride, REAL amp, REAL t_on, REAL t_off,
            REAL *v_out) {
    const REAL g_k = 36, g_l = (REAL)0.3, e_na = 50, e_k = -77, e_l = (REAL)-54.387, c_m = 1;
    const long n_saves = n_steps / stride + 1;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n_neurons; i++) {
        REAL v = y0[i], m = y0[n_neurons + i], h = y0[2 * n_neurons + i], n = y0[3 * n_neurons + i];
        const REAL gna_max = g_na[i];
        REAL *out = v_out + i * n_saves;
        out[0] = v;
        for (long k = 0; k < n_steps; k++) {
            const REAL t = dt * (REAL)k;
            const REAL I = (t >= t_on && t < t_off) ? amp : (REAL)0;
            const REAL am = exprel_inv((v + 40) / 10);          /* 0.1 * 10 * ... */
            const REAL bm = 4 * EXP(-(v + 65) / 18);
            const REAL ah = (REAL)0.07 * EXP(-(v + 65) / 20);
            const REAL bh = 1 / (1 + EXP(-(v + 35) / 10));
            const REAL an = (REAL)0.1 * exprel_inv((v + 55) / 10); /* 0.01 * 10 * ... */
            const REAL bn = (REAL)0.125 * EXP(-(v + 65) / 80);
            const REAL gna = gna_max * m * m * m * h, gk = g_k * n * n * n * n;
            const REAL gtot = gna + gk + g_l;
            const REAL vinf = (I + gna * e_na + gk * e_k + g_l * e_l) / gtot;
            const REAL v_new = vinf + (v - vinf) * EXP(-gtot * dt / c_m);
            const REAL sm = am + bm, sh = ah + bh, sn = an + bn;
            m = am / sm + (m - am / sm) * EXP(-sm * dt);
            h = ah / sh + (h - ah / sh) * EXP(-sh * dt);
            n = an / sn + (n - an / sn) * EXP(-sn * dt);
            v = v_new;
            if ((k + 1) % stride == 0) out[(k + 1) / stride] = v;
        }
    }
}
