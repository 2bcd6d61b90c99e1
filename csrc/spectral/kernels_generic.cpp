// Spectral kernels compiled for the generic instruction set (see dispatch.cpp).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dispatch.h"

#if 1

#define MV_ISA generic
#include "kernels.inc"
#endif
