// Run-time choice of the kernel variant: AVX-512, AVX2+FMA or the portable build.
#include "dispatch.h"

#include <cstdlib>
#include <cstring>

namespace microvae_spectral {

#define MV_DECLARE(isa)                                    \
  void s2_binned_f64_##isa(MV_S2_PARAMS(double));          \
  void s2_binned_f32_##isa(MV_S2_PARAMS(float));           \
  void harmonic_moments_f64_##isa(MV_HARMONIC_PARAMS(double)); \
  void harmonic_moments_f32_##isa(MV_HARMONIC_PARAMS(float));
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
#define MV_DISPATCH(name, args)            \
  switch (level()) {                       \
    case 2: return name##_avx512(args);    \
    case 1: return name##_avx2(args);      \
    default: return name##_generic(args);  \
  }
#else
#define MV_DISPATCH(name, args) return name##_generic(args);
#endif

void s2_binned_f64(MV_S2_PARAMS(double)) { MV_DISPATCH(s2_binned_f64, MV_S2_ARGS) }
void s2_binned_f32(MV_S2_PARAMS(float)) { MV_DISPATCH(s2_binned_f32, MV_S2_ARGS) }
void harmonic_moments_f64(MV_HARMONIC_PARAMS(double)) { MV_DISPATCH(harmonic_moments_f64, MV_HARMONIC_ARGS) }
void harmonic_moments_f32(MV_HARMONIC_PARAMS(float)) { MV_DISPATCH(harmonic_moments_f32, MV_HARMONIC_ARGS) }

}  // namespace microvae_spectral
