#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <functional>

#include "../style_loss.h"

namespace microvae {
namespace {

// Elements per parallel chunk: below this, thread start-up costs more than the loop.
constexpr int64_t kGrain = 1 << 14;

struct CpuKernels {
  static at::Tensor sqdist(const at::Tensor& a, const at::Tensor& b) {
    const int64_t n = a.numel(), nb = b.numel();
    double total = 0.0;
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "style_sqdist_cpu", [&] {
      const scalar_t* pa = a.const_data_ptr<scalar_t>();
      const scalar_t* pb = b.const_data_ptr<scalar_t>();
      total = at::parallel_reduce(
          0, n, kGrain, 0.0,
          [&](int64_t begin, int64_t end, double acc) {
            int64_t j = begin % nb;
            for (int64_t i = begin; i < end; ++i) {
              const double d = static_cast<double>(pa[i]) - static_cast<double>(pb[j]);
              acc += d * d;
              if (++j == nb) j = 0;
            }
            return acc;
          },
          std::plus<double>());
    });
    return at::scalar_tensor(total, a.options().dtype(at::kDouble));
  }

  static at::Tensor scaled_diff(const at::Tensor& a, const at::Tensor& b, const std::optional<at::Tensor>& gg,
                                const at::Tensor& grad_loss, double k, double scale, bool symmetrize) {
    auto out = at::empty_like(a);
    const int64_t M = a.size(0), C = a.size(1), CC = C * C, nb = b.numel();
    const double kg = k * grad_loss.item<double>();
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "style_scaled_diff_cpu", [&] {
      const scalar_t* pa = a.const_data_ptr<scalar_t>();
      const scalar_t* pb = b.const_data_ptr<scalar_t>();
      const scalar_t* pg = gg.has_value() ? gg->const_data_ptr<scalar_t>() : nullptr;
      scalar_t* po = out.mutable_data_ptr<scalar_t>();
      auto h = [&](int64_t i) {
        const double v = kg * (static_cast<double>(pa[i]) - static_cast<double>(pb[i % nb]));
        return pg ? v + static_cast<double>(pg[i]) : v;
      };
      // One task per row r of a C x C block: it also reads column r, so both stay in cache.
      at::parallel_for(0, M * C, std::max<int64_t>(1, kGrain / C), [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
          const int64_t m = row / C, r = row % C;
          for (int64_t c = 0; c < C; ++c) {
            const int64_t i = m * CC + r * C + c;
            const double v = symmetrize ? h(i) + h(m * CC + c * C + r) : h(i);
            po[i] = static_cast<scalar_t>(scale * v);
          }
        }
      });
    });
    return out;
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(microvae, CPU, m) {
  m.impl("style_layer_forward", &style_layer_forward_impl<CpuKernels>);
  m.impl("style_layer_backward", &style_layer_backward_impl<CpuKernels>);
}

}  // namespace microvae
