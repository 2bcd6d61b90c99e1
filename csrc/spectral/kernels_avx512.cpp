// Spectral kernels compiled for the avx512 instruction set (see dispatch.cpp).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dispatch.h"

#if MICROVAE_X86_VARIANTS
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")
#define MV_ISA avx512
#include "kernels.inc"
#endif
