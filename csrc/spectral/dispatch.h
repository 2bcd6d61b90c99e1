// Entry points of the spectral kernels (microvae._spectral); each picks the widest instruction
// set the CPU supports at run time.
#pragma once

#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MICROVAE_X86_VARIANTS 1
#else
#define MICROVAE_X86_VARIANTS 0
#endif

namespace microvae_spectral {

// Name of the instruction set in use: "avx512", "avx2" or "generic".
const char* isa_name();

// Radial S2 bin averages of n binary (ny, nx) images; see csrc/spectral/s2_kernel.h.
void s2_binned_f64(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, const int32_t* orbit,
                   const double* fold, int n_orbits, const double* binning, int n_bins, double* out, int threads);
void s2_binned_f32(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, const int32_t* orbit,
                   const float* fold, int n_orbits, const float* binning, int n_bins, float* out, int threads);

// Harmonic moments (and optionally radial S2) of n binary (ny, nx) images; see harmonic_kernel.h.
void harmonic_moments_f64(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, int y0, int y1, int x0, int x1,
                     const double* mult_re, const double* mult_im, int n_mult, double* moments, double* phi, const double* box_re,
                     const double* box_im, const int32_t* orbit, const double* fold, int n_orbits, const double* binning,
                     int n_bins, double* s2, int threads);
void harmonic_moments_f32(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, int y0, int y1, int x0, int x1,
                     const float* mult_re, const float* mult_im, int n_mult, float* moments, float* phi, const float* box_re,
                     const float* box_im, const int32_t* orbit, const float* fold, int n_orbits, const float* binning,
                     int n_bins, float* s2, int threads);

}  // namespace microvae_spectral
