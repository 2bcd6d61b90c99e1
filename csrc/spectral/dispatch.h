// Entry points of the spectral kernels (microvae._spectral); each picks the widest instruction
// set the CPU supports at run time.
#pragma once

#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MICROVAE_X86_VARIANTS 1
#else
#define MICROVAE_X86_VARIANTS 0
#endif

// Parameter and argument lists of the kernels, shared by the declarations, the variants and the
// dispatch. S2: see s2_kernel.h; harmonic moments: see harmonic_kernel.h.
#define MV_S2_PARAMS(T)                                                                                 \
  const uint8_t *images, int64_t n, int ny, int nx, int Ly, int Lx, const int32_t *orbit, const T *fold, \
      int n_orbits, const T *binning, int n_bins, T *out, int threads
#define MV_S2_ARGS images, n, ny, nx, Ly, Lx, orbit, fold, n_orbits, binning, n_bins, out, threads
#define MV_HARMONIC_PARAMS(T)                                                                         \
  const uint8_t *images, int64_t n, int ny, int nx, int Ly, int Lx, int y0, int y1, int x0, int x1,    \
      const T *mult_re, const T *mult_im, int n_mult, T *moments, T *phi, const T *box_re, const T *box_im, \
      const int32_t *orbit, const T *fold, int n_orbits, const T *binning, int n_bins, T *s2, int threads
#define MV_HARMONIC_ARGS                                                                                   \
  images, n, ny, nx, Ly, Lx, y0, y1, x0, x1, mult_re, mult_im, n_mult, moments, phi, box_re, box_im, orbit, \
      fold, n_orbits, binning, n_bins, s2, threads

namespace microvae_spectral {

// Name of the instruction set in use: "avx512", "avx2" or "generic".
const char* isa_name();

void s2_binned_f64(MV_S2_PARAMS(double));
void s2_binned_f32(MV_S2_PARAMS(float));
void harmonic_moments_f64(MV_HARMONIC_PARAMS(double));
void harmonic_moments_f32(MV_HARMONIC_PARAMS(float));

}  // namespace microvae_spectral
