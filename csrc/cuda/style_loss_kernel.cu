#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../style_loss.h"

namespace microvae {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;

int blocks_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>(kMaxBlocks, std::max<int64_t>(1, (n + kThreads - 1) / kThreads)));
}

// Per-block partial sums of (a[i] - b[i mod nb])^2 in double; the partials are summed by ATen on
// the device, so the result is deterministic and needs no host synchronization.
template <typename scalar_t>
__global__ void sqdist_partials_kernel(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b, int64_t n,
                                       int64_t nb, double* __restrict__ partials) {
  __shared__ double buf[kThreads];
  double acc = 0.0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i % nb]);
    acc += d * d;
  }
  buf[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = buf[0];
}

template <typename scalar_t>
__device__ __forceinline__ double scaled_diff_term(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                                   const scalar_t* __restrict__ gg, int64_t i, int64_t nb,
                                                   double kg) {
  const double v = kg * (static_cast<double>(a[i]) - static_cast<double>(b[i % nb]));
  return gg != nullptr ? v + static_cast<double>(gg[i]) : v;
}

// out = scale * (h + h^T) (or scale * h) with h = k * grad_loss * (a - b[i mod nb]) + gg;
// grad_loss is read on the device, so the backward never waits for the host.
template <typename scalar_t>
__global__ void scaled_diff_kernel(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                   const scalar_t* __restrict__ gg, const double* __restrict__ grad_loss,
                                   int64_t n, int64_t nb, int64_t C, double k, double scale, bool symmetrize,
                                   scalar_t* __restrict__ out) {
  const double kg = k * grad_loss[0];
  const int64_t CC = C * C;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double v = scaled_diff_term(a, b, gg, i, nb, kg);
    if (symmetrize) {
      const int64_t m = i / CC, r = (i % CC) / C, c = i % C;
      v += scaled_diff_term(a, b, gg, m * CC + c * C + r, nb, kg);
    }
    out[i] = static_cast<scalar_t>(scale * v);
  }
}

struct CudaKernels {
  static at::Tensor sqdist(const at::Tensor& a, const at::Tensor& b) {
    c10::cuda::CUDAGuard guard(a.device());
    const int64_t n = a.numel();
    const int blocks = blocks_for(n);
    auto partials = at::zeros({blocks}, a.options().dtype(at::kDouble));
    if (n == 0) return partials.sum();
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "style_sqdist_cuda", [&] {
      sqdist_partials_kernel<scalar_t><<<blocks, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
          a.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(), n, b.numel(),
          partials.mutable_data_ptr<double>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return partials.sum();
  }

  static at::Tensor scaled_diff(const at::Tensor& a, const at::Tensor& b, const std::optional<at::Tensor>& gg,
                                const at::Tensor& grad_loss, double k, double scale, bool symmetrize) {
    c10::cuda::CUDAGuard guard(a.device());
    auto out = at::empty_like(a);
    const int64_t n = a.numel();
    if (n == 0) return out;
    const auto gl = grad_loss.to(a.device(), at::kDouble).contiguous();
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "style_scaled_diff_cuda", [&] {
      scaled_diff_kernel<scalar_t><<<blocks_for(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
          a.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(),
          gg.has_value() ? gg->const_data_ptr<scalar_t>() : nullptr, gl.const_data_ptr<double>(), n, b.numel(),
          a.size(1), k, scale, symmetrize, out.mutable_data_ptr<scalar_t>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return out;
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(microvae, CUDA, m) {
  m.impl("style_layer_forward", &style_layer_forward_impl<CudaKernels>);
  m.impl("style_layer_backward", &style_layer_backward_impl<CudaKernels>);
}

}  // namespace microvae
