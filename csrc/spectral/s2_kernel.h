// Radial S2 of a batch of 2D binary images in one pass per group of V images: real 2D FFT
// (zero-padded to the grid), power spectrum, fold onto the symmetry orbits of the spectrum and
// the bin averages as a product with the orbit binning matrix. Nothing but the V images' row
// transforms is held in memory at a time, so the work stays in cache.
#pragma once

#include "batched_fft.h"

// The bin averages of V images' orbit sums: res = acc . binning ((n_orbits, n_bins)), written to
// out[l * n_bins + b] for the first `lanes` images.
template <typename T, int V>
void bin_orbits(const typename Lanes<T, V>::vec* acc, int n_orbits, const T* binning, int n_bins,
                typename Lanes<T, V>::vec* res, T* out, int lanes) {
  typedef typename Lanes<T, V>::vec vec;
  for (int b = 0; b < n_bins; ++b) res[b] = vec{};
  for (int o = 0; o < n_orbits; ++o) {
    const T* row = binning + static_cast<size_t>(o) * n_bins;
    const vec a = acc[o];
    for (int b = 0; b < n_bins; ++b) res[b] += a * row[b];
  }
  for (int l = 0; l < lanes; ++l)
    for (int b = 0; b < n_bins; ++b) out[l * n_bins + b] = res[b][l];
}

template <typename T, int V>
struct S2Binned {
  typedef typename Lanes<T, V>::vec vec;

  // images: (n, ny, nx) of 0/1 bytes. The grid (Ly, Lx) >= (ny, nx) is the zero-padded FFT
  // grid; orbit[qy * (Lx/2+1) + qx] is the orbit of each half-spectrum element and
  // fold[qx] its Hermitian weight; binning: (n_orbits, n_bins); out: (n, n_bins).
  static void run(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, const int32_t* orbit,
                  const T* fold, int n_orbits, const T* binning, int n_bins, T* out, int threads) {
    const int wc = Lx / 2 + 1;
    const std::vector<Stage<T>> plan_x = fft_plan<T>(Lx), plan_y = fft_plan<T>(Ly);
    const int64_t groups = (n + V - 1) / V;
#pragma omp parallel num_threads(threads)
    {
      const int big = Lx > Ly ? Lx : Ly;
      Buffer<vec> rows_r(static_cast<size_t>(ny) * wc), rows_i(static_cast<size_t>(ny) * wc);
      Buffer<vec> ar(big), ai(big), br(big), bi(big), acc(n_orbits), res(n_bins);
      Buffer<T> pixels(static_cast<size_t>(ny) * nx * V);
#pragma omp for schedule(dynamic)
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t first = g * V;
        const int lanes = static_cast<int>(n - first < V ? n - first : V);
        const int64_t image = static_cast<int64_t>(ny) * nx;
        to_lanes<T, V>(images + first * image, image, lanes, static_cast<const T*>(nullptr), pixels.data());
        rfft_rows<T, V>(plan_x, pixels.data(), ny, nx, Lx, ar.data(), ai.data(), br.data(), bi.data(), rows_r.data(),
                        rows_i.data());
        // Columns: one FFT per frequency qx, consumed at once into the orbit sums.
        for (int o = 0; o < n_orbits; ++o) acc[o] = vec{};
        for (int k = 0; k < wc; ++k) {
          for (int y = 0; y < Ly; ++y) {
            if (y < ny) {
              ar[y] = rows_r[static_cast<size_t>(y) * wc + k];
              ai[y] = rows_i[static_cast<size_t>(y) * wc + k];
            } else {
              ar[y] = vec{};
              ai[y] = vec{};
            }
          }
          const bool in_b = fft_run<T, V>(plan_y, ar.data(), ai.data(), br.data(), bi.data());
          const vec* fr = in_b ? br.data() : ar.data();
          const vec* fi = in_b ? bi.data() : ai.data();
          const T w = fold[k];
          for (int y = 0; y < Ly; ++y) acc[orbit[y * wc + k]] += (fr[y] * fr[y] + fi[y] * fi[y]) * w;
        }
        bin_orbits<T, V>(acc.data(), n_orbits, binning, n_bins, res.data(), out + first * n_bins, lanes);
      }
    }
  }
};
