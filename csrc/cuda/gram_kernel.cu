#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../gram.h"

namespace microvae {
namespace {

constexpr int TILE = 32;

// One thread block computes a TILE x TILE block of G[b] with block row <= block column and
// mirrors it, so only the upper triangle of tiles is launched: half the FLOPs of a plain GEMM.
template <typename scalar_t, typename acc_t>
__global__ void gram_upper_kernel(const scalar_t* __restrict__ f, scalar_t* __restrict__ g,
                                  int C, int64_t N, int tiles) {
  const int b = blockIdx.z;
  // Map the linear upper-triangle index to (tile_row, tile_col), tile_row <= tile_col.
  int t = blockIdx.x, tile_row = 0, row_len = tiles;
  while (t >= row_len) { t -= row_len; ++tile_row; --row_len; }
  const int tile_col = tile_row + t;

  __shared__ acc_t a_s[TILE][TILE + 1];
  __shared__ acc_t b_s[TILE][TILE + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = tile_row * TILE + ty, col = tile_col * TILE + tx;
  const scalar_t* fb = f + static_cast<int64_t>(b) * C * N;
  acc_t acc = 0;
  for (int64_t k0 = 0; k0 < N; k0 += TILE) {
    const int64_t k = k0 + tx;
    const int ar = tile_row * TILE + ty, br = tile_col * TILE + ty;
    a_s[ty][tx] = (ar < C && k < N) ? static_cast<acc_t>(fb[ar * N + k]) : acc_t(0);
    b_s[ty][tx] = (br < C && k < N) ? static_cast<acc_t>(fb[br * N + k]) : acc_t(0);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < TILE; ++kk) acc += a_s[ty][kk] * b_s[tx][kk];
    __syncthreads();
  }
  if (row < C && col < C) {
    scalar_t* gb = g + static_cast<int64_t>(b) * C * C;
    gb[row * C + col] = static_cast<scalar_t>(acc);
    gb[col * C + row] = static_cast<scalar_t>(acc);
  }
}

}  // namespace

at::Tensor gram_forward_cuda(const at::Tensor& features) {
  check_gram_inputs(features);
  TORCH_CHECK(features.is_cuda(), "gram_forward_cuda: features must be a CUDA tensor");
  TORCH_CHECK(features.size(0) <= 65535, "gram_forward_cuda: batch larger than 65535");
  c10::cuda::CUDAGuard guard(features.device());
  auto f = features.contiguous();
  const int B = f.size(0), C = f.size(1);
  const int64_t N = f.size(2);
  auto g = at::empty({B, C, C}, f.options());
  if (B == 0 || C == 0) return g;
  const int tiles = (C + TILE - 1) / TILE;
  const dim3 grid(tiles * (tiles + 1) / 2, 1, B), block(TILE, TILE);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, f.scalar_type(), "gram_forward_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    gram_upper_kernel<scalar_t, acc_t><<<grid, block, 0, c10::cuda::getCurrentCUDAStream()>>>(
        f.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), C, N, tiles);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return g;
}

at::Tensor gram_backward_cuda(const at::Tensor& grad_gram, const at::Tensor& features) {
  check_gram_backward_inputs(grad_gram, features);
  c10::cuda::CUDAGuard guard(features.device());
  // A (C x C) by (C x N) product per image: cuBLAS is the right tool.
  return at::bmm(grad_gram + grad_gram.transpose(1, 2), features.contiguous());
}

TORCH_LIBRARY_IMPL(microvae, CUDA, m) {
  m.impl("gram_forward", &gram_forward_cuda);
  m.impl("gram_backward", &gram_backward_cuda);
}

}  // namespace microvae
