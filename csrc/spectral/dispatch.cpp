// Run-time choice of the kernel variant: AVX-512, AVX2+FMA or the portable build.
#include "dispatch.h"

#include <cstdlib>
#include <cstring>

namespace microvae_spectral {

#define MV_DECLARE(isa)                                                                                        \
  void s2_binned_f64_##isa(const uint8_t*, int64_t, int, int, int, int, const int32_t*, const double*, int,     \
                           const double*, int, double*, int);                                                  \
  void s2_binned_f32_##isa(const uint8_t*, int64_t, int, int, int, int, const int32_t*, const float*, int,      \
                           const float*, int, float*, int);                                                   \
  void harmonic_moments_f64_##isa(const uint8_t*, int64_t, int, int, int, int, int, int, int, int, const double*, \
                                  const double*, int, double*, double*, const double*, const double*,             \
                                  const int32_t*, const double*, int, const double*, int, double*, int);           \
  void harmonic_moments_f32_##isa(const uint8_t*, int64_t, int, int, int, int, int, int, int, int, const float*,  \
                                  const float*, int, float*, float*, const float*, const float*, const int32_t*,    \
                                  const float*, int, const float*, int, float*, int);
MV_DECLARE(generic)
#if MICROVAE_X86_VARIANTS
MV_DECLARE(avx2)
MV_DECLARE(avx512)
#endif

namespace {
// 2: AVX-512, 1: AVX2 + FMA, 0: generic. MICROVAE_SPECTRAL_ISA=generic|avx2 caps it (for tests).
int detect() {
  int level = 0;
#if MICROVAE_X86_VARIANTS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = 1;
  if (level == 1 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
    level = 2;
#endif
  const char* cap = std::getenv("MICROVAE_SPECTRAL_ISA");
  if (cap && std::strcmp(cap, "generic") == 0) level = 0;
  if (cap && std::strcmp(cap, "avx2") == 0 && level > 1) level = 1;
  return level;
}
int level() {
  static const int value = detect();
  return value;
}
}  // namespace

const char* isa_name() {
  static const char* names[] = {"generic", "avx2", "avx512"};
  return names[level()];
}

#if MICROVAE_X86_VARIANTS
#define MV_DISPATCH(name, ...)                          \
  switch (level()) {                                    \
    case 2: return name##_avx512(__VA_ARGS__);          \
    case 1: return name##_avx2(__VA_ARGS__);            \
    default: return name##_generic(__VA_ARGS__);        \
  }
#else
#define MV_DISPATCH(name, ...) return name##_generic(__VA_ARGS__);
#endif

void s2_binned_f64(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, const int32_t* orbit,
                   const double* fold, int n_orbits, const double* binning, int n_bins, double* out, int threads) {
  MV_DISPATCH(s2_binned_f64, images, n, ny, nx, Ly, Lx, orbit, fold, n_orbits, binning, n_bins, out, threads)
}

void s2_binned_f32(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, const int32_t* orbit,
                   const float* fold, int n_orbits, const float* binning, int n_bins, float* out, int threads) {
  MV_DISPATCH(s2_binned_f32, images, n, ny, nx, Ly, Lx, orbit, fold, n_orbits, binning, n_bins, out, threads)
}

void harmonic_moments_f64(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, int y0, int y1, int x0, int x1,
                     const double* mult_re, const double* mult_im, int n_mult, double* moments, double* phi, const double* box_re,
                     const double* box_im, const int32_t* orbit, const double* fold, int n_orbits, const double* binning,
                     int n_bins, double* s2, int threads) {
  MV_DISPATCH(harmonic_moments_f64, images, n, ny, nx, Ly, Lx, y0, y1, x0, x1, mult_re, mult_im, n_mult, moments, phi, box_re, box_im, orbit, fold, n_orbits, binning, n_bins, s2, threads)
}

void harmonic_moments_f32(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, int y0, int y1, int x0, int x1,
                     const float* mult_re, const float* mult_im, int n_mult, float* moments, float* phi, const float* box_re,
                     const float* box_im, const int32_t* orbit, const float* fold, int n_orbits, const float* binning,
                     int n_bins, float* s2, int threads) {
  MV_DISPATCH(harmonic_moments_f32, images, n, ny, nx, Ly, Lx, y0, y1, x0, x1, mult_re, mult_im, n_mult, moments, phi, box_re, box_im, orbit, fold, n_orbits, binning, n_bins, s2, threads)
}

}  // namespace microvae_spectral
