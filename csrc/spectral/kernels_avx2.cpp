// Spectral kernels compiled for the avx2 instruction set (see dispatch.cpp).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dispatch.h"

#if MICROVAE_X86_VARIANTS
#pragma GCC target("avx2,fma")
#define MV_ISA avx2
#include "kernels.inc"
#endif
