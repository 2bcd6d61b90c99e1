// Harmonic moments of 2D binary images for the three-point parameters (microvae.properties.
// harmonic), V images at a time, and optionally their radial S2 from the same transform.
//
// Per image: delta = I - phi on the image (zero on the padding of a non-periodic grid), its
// spectrum F, and for every complex multiplier R_k (real and imaginary parts even in q) the sums
// over the observed window of delta (Re f)^2 and delta (Im f)^2 with f = ifft(F R_k). The inverse
// transforms are pruned: along y only the window's rows are kept, along x only those rows are
// transformed. ifft(G) = conj(fft(conj G)) / N, and conjugation leaves the squares unchanged.
#pragma once

#include "s2_kernel.h"  // bin_orbits; s2_kernel.h includes batched_fft.h

template <typename T, int V>
struct HarmonicMoments {
  typedef typename Lanes<T, V>::vec vec;

  // images (n, ny, nx); grid (Ly, Lx); window rows [y0, y1), columns [x0, x1) of the image;
  // mult_re/mult_im (n_mult, Ly, Lx); moments out (n, 2 n_mult); phi out (n).
  // With binning != nullptr also S2 bins (n, n_bins) from |F + phi F_W|^2 (box_re/box_im: the
  // half spectrum of the image's support, Ly x (Lx/2+1)), folded as in s2_kernel.h.
  static void run(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, int y0, int y1, int x0, int x1,
                  const T* mult_re, const T* mult_im, int n_mult, T* moments, T* phi_out, const T* box_re,
                  const T* box_im, const int32_t* orbit, const T* fold, int n_orbits, const T* binning, int n_bins,
                  T* s2_out, int threads) {
    const int wc = Lx / 2 + 1, wy = y1 - y0, wx = x1 - x0;
    const std::vector<Stage<T>> plan_x = fft_plan<T>(Lx), plan_y = fft_plan<T>(Ly);
    const int64_t groups = (n + V - 1) / V;
    const int64_t image = static_cast<int64_t>(ny) * nx;
    const T scale = static_cast<T>(1.0 / (static_cast<double>(Ly) * Lx * static_cast<double>(Ly) * Lx * wy * wx));
#pragma omp parallel num_threads(threads)
    {
      const int big = Lx > Ly ? Lx : Ly;
      Buffer<vec> spec_r(static_cast<size_t>(Ly) * wc), spec_i(static_cast<size_t>(Ly) * wc),
          tr(static_cast<size_t>(wy) * Lx), ti(static_cast<size_t>(wy) * Lx);
      Buffer<vec> ar(big), ai(big), br(big), bi(big), acc(n_orbits > 0 ? n_orbits : 1),
          res(n_bins > 0 ? n_bins : 1), sums(2 * static_cast<size_t>(n_mult));
      Buffer<T> delta(static_cast<size_t>(image) * V);  // lane order: delta[i * V + l]
#pragma omp for schedule(dynamic)
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t first = g * V;
        const int lanes = static_cast<int>(n - first < V ? n - first : V);
        const uint8_t* base = images + first * image;
        T phi_l[V] = {};
        for (int l = 0; l < lanes; ++l) {
          int64_t count = 0;
          for (int64_t i = 0; i < image; ++i) count += base[l * image + i];
          phi_l[l] = static_cast<T>(static_cast<double>(count) / image);
        }
        const vec phi = load_lanes<T, V>(phi_l);
        to_lanes<T, V>(base, image, lanes, phi_l, delta.data());  // empty lanes: zero images, not -phi
        const T* dl = delta.data();
        // Forward: the rows' half spectra, then the columns.
        rfft_rows<T, V>(plan_x, dl, ny, nx, Lx, ar.data(), ai.data(), br.data(), bi.data(), spec_r.data(),
                        spec_i.data());
        for (int k = 0; k < wc; ++k) {
          for (int y = 0; y < Ly; ++y) {
            ar[y] = y < ny ? spec_r[static_cast<size_t>(y) * wc + k] : vec{};
            ai[y] = y < ny ? spec_i[static_cast<size_t>(y) * wc + k] : vec{};
          }
          const bool in_b = fft_run<T, V>(plan_y, ar.data(), ai.data(), br.data(), bi.data());
          const vec* fr = in_b ? br.data() : ar.data();
          const vec* fi = in_b ? bi.data() : ai.data();
          for (int y = 0; y < Ly; ++y) {
            spec_r[static_cast<size_t>(y) * wc + k] = fr[y];
            spec_i[static_cast<size_t>(y) * wc + k] = fi[y];
          }
        }
        if (binning) {  // S2 of I = delta + phi W from the same spectrum
          for (int o = 0; o < n_orbits; ++o) acc[o] = vec{};
          for (int y = 0; y < Ly; ++y)
            for (int k = 0; k < wc; ++k) {
              const size_t i = static_cast<size_t>(y) * wc + k;
              const vec re = spec_r[i] + phi * box_re[i], im = spec_i[i] + phi * box_im[i];
              acc[orbit[i]] += (re * re + im * im) * fold[k];
            }
          bin_orbits<T, V>(acc.data(), n_orbits, binning, n_bins, res.data(), s2_out + first * n_bins, lanes);
        }
        // Inverse per multiplier: columns (all qx, keeping the window's rows), then the rows.
        for (int h = 0; h < n_mult; ++h) {
          const T* mr = mult_re + static_cast<size_t>(h) * Ly * Lx;
          const T* mi = mult_im + static_cast<size_t>(h) * Ly * Lx;
          for (int qx = 0; qx < Lx; ++qx) {
            const bool direct = qx < wc;
            for (int qy = 0; qy < Ly; ++qy) {
              // conj(F R): F at qx > Lx/2 from Hermitian symmetry, F(q) = conj(F(-q)).
              vec fr, fi;
              if (direct) {
                const size_t i = static_cast<size_t>(qy) * wc + qx;
                fr = spec_r[i];
                fi = -spec_i[i];
              } else {
                const size_t i = static_cast<size_t>(qy == 0 ? 0 : Ly - qy) * wc + (Lx - qx);
                fr = spec_r[i];
                fi = spec_i[i];
              }
              const T r = mr[static_cast<size_t>(qy) * Lx + qx], s = -mi[static_cast<size_t>(qy) * Lx + qx];
              ar[qy] = fr * r - fi * s;
              ai[qy] = fr * s + fi * r;
            }
            const bool in_b = fft_run<T, V>(plan_y, ar.data(), ai.data(), br.data(), bi.data());
            const vec* fr = in_b ? br.data() : ar.data();
            const vec* fi = in_b ? bi.data() : ai.data();
            for (int y = y0; y < y1; ++y) {
              tr[static_cast<size_t>(y - y0) * Lx + qx] = fr[y];
              ti[static_cast<size_t>(y - y0) * Lx + qx] = fi[y];
            }
          }
          vec s_re = {}, s_im = {};
          for (int y = y0; y < y1; ++y) {
            for (int x = 0; x < Lx; ++x) {
              ar[x] = tr[static_cast<size_t>(y - y0) * Lx + x];
              ai[x] = ti[static_cast<size_t>(y - y0) * Lx + x];
            }
            const bool in_b = fft_run<T, V>(plan_x, ar.data(), ai.data(), br.data(), bi.data());
            const vec* fr = in_b ? br.data() : ar.data();
            const vec* fi = in_b ? bi.data() : ai.data();
            const T* d = dl + static_cast<size_t>(y) * nx * V;
            for (int x = x0; x < x1; ++x) {
              const vec w = load_lanes<T, V>(d + static_cast<size_t>(x) * V);
              s_re += w * fr[x] * fr[x];
              s_im += w * fi[x] * fi[x];
            }
          }
          sums[2 * h] = s_re;
          sums[2 * h + 1] = s_im;
        }
        for (int l = 0; l < lanes; ++l) {
          phi_out[first + l] = phi[l];
          for (int h = 0; h < 2 * n_mult; ++h) moments[(first + l) * 2 * n_mult + h] = sums[h][l] * scale;
        }
      }
    }
  }
};
