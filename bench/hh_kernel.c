/* Hardware reference for the batched-throughput benchmark: the classic HH model
 * advanced with the same closed-form exponential-Euler (Rush–Larsen) step as
 * hhjax.simulate_population / hhjax.ExponentialEuler, N neurons (one g_na each),
 * OpenMP over neurons, each neuron's state in registers for the whole run.
 *
 * Built by bench/run.py:  gcc -O3 -march=native -ffast-math -fopenmp -shared -fPIC
 *   -DREAL=double -o hh_kernel_f64.so hh_kernel.c   (and -DREAL=float)
 * (-ffast-math lets gcc call glibc's vector exp, libmvec, in the SIMD loop.)
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

#define BLOCK 512

void hh_run(long n_neurons, const REAL *g_na, const REAL *y0 /* (4, N): v m h n */,
            REAL dt, long n_steps, long stride, REAL amp, REAL t_on, REAL t_off,
            REAL *v_out) {
    const REAL g_k = 36, g_l = (REAL)0.3, e_na = 50, e_k = -77, e_l = (REAL)-54.387, c_m = 1;
    const long n_saves = n_steps / stride + 1;
    const long n_blocks = (n_neurons + BLOCK - 1) / BLOCK;
    /* blocks of neurons in parallel; inside a block the time loop runs outside and
       the neuron loop inside, so it vectorises (SIMD exp from libmvec) and the
       block's state stays in L1 */
#pragma omp parallel for schedule(static)
    for (long b = 0; b < n_blocks; b++) {
        const long i0 = b * BLOCK;
        const long nb = (i0 + BLOCK <= n_neurons) ? BLOCK : n_neurons - i0;
        REAL v[BLOCK], m[BLOCK], h[BLOCK], n[BLOCK], gmax[BLOCK];
        for (long j = 0; j < nb; j++) {
            v[j] = y0[i0 + j]; m[j] = y0[n_neurons + i0 + j];
            h[j] = y0[2 * n_neurons + i0 + j]; n[j] = y0[3 * n_neurons + i0 + j];
            gmax[j] = g_na[i0 + j];
            v_out[(i0 + j) * n_saves] = v[j];
        }
        for (long k = 0; k < n_steps; k++) {
            const REAL t = dt * (REAL)k;
            const REAL I = (t >= t_on && t < t_off) ? amp : (REAL)0;
#pragma omp simd
            for (long j = 0; j < nb; j++) {
                const REAL vj = v[j];
                const REAL um = (vj + 40) / 10, un = (vj + 55) / 10;
                /* u/(1-exp(-u)) with the series near the removable point u = 0 (as
                   hhjax.exprel_inv); both branches computed, blended (SIMD-friendly) */
                const REAL um_s = (um * um < (REAL)1e-6) ? (REAL)1 : um;
                const REAL un_s = (un * un < (REAL)1e-6) ? (REAL)1 : un;
                const REAL am = (um * um < (REAL)1e-6) ? (REAL)1 + um / 2 + um * um / 12
                                                       : um_s / ((REAL)1 - EXP(-um_s));
                const REAL bm = 4 * EXP(-(vj + 65) / 18);
                const REAL ah = (REAL)0.07 * EXP(-(vj + 65) / 20);
                const REAL bh = 1 / (1 + EXP(-(vj + 35) / 10));
                const REAL an = (REAL)0.1 * ((un * un < (REAL)1e-6) ? (REAL)1 + un / 2 + un * un / 12
                                                                    : un_s / ((REAL)1 - EXP(-un_s)));
                const REAL bn = (REAL)0.125 * EXP(-(vj + 65) / 80);
                const REAL mj = m[j], hj = h[j], nj = n[j];
                const REAL gna = gmax[j] * mj * mj * mj * hj, gk = g_k * nj * nj * nj * nj;
                const REAL gtot = gna + gk + g_l;
                const REAL vinf = (I + gna * e_na + gk * e_k + g_l * e_l) / gtot;
                v[j] = vinf + (vj - vinf) * EXP(-gtot * dt / c_m);
                const REAL sm = am + bm, sh = ah + bh, sn = an + bn;
                m[j] = am / sm + (mj - am / sm) * EXP(-sm * dt);
                h[j] = ah / sh + (hj - ah / sh) * EXP(-sh * dt);
                n[j] = an / sn + (nj - an / sn) * EXP(-sn * dt);
            }
            if ((k + 1) % stride == 0)
                for (long j = 0; j < nb; j++) v_out[(i0 + j) * n_saves + (k + 1) / stride] = v[j];
        }
    }
}
