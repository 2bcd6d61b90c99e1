// Complex FFTs vectorized across images: every element is a SIMD vector whose lanes hold the
// same sample of V different images, so each butterfly works on V images at once without any
// shuffles (the lanes never interact). Mixed-radix Stockham autosort, decimation in frequency,
// radices 4, 2, 3, 5 specialized and any other prime by a direct DFT.
//
// Included once per instruction set by kernels_*.cpp inside a namespace of its own (after the
// standard headers it uses, which the includer includes first), so that the
// same source compiles to SSE2, AVX2 and AVX-512 code chosen at run time.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

template <typename T, int V>
struct Lanes {
  typedef T vec __attribute__((vector_size(sizeof(T) * V)));
};

// 64-byte aligned scratch of n elements (a std::vector of SIMD vectors would be one template
// instantiation shared by the SSE2, AVX2 and AVX-512 translation units, compiled for only one).
template <typename E>
struct Buffer {
  E* ptr;
  explicit Buffer(size_t n) : ptr(static_cast<E*>(std::aligned_alloc(64, ((n * sizeof(E) + 63) / 64 + 1) * 64))) {}
  ~Buffer() { std::free(ptr); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  E* data() { return ptr; }
  E& operator[](size_t i) { return ptr[i]; }
};

// Transposes V images (n values each, any integer type) into lane order: out[i * V + l] =
// images[l * n + i] - shift[l] for the first `lanes` images, 0 in the other lanes. Scalar stores
// to a buffer that is read back as vectors later: building a vector lane by lane in a register
// stalls on every read (the stores cannot be forwarded to the wide load).
template <typename T, int V, typename S>
void to_lanes(const S* images, int64_t n, int lanes, const T* shift, T* out) {
  for (int l = 0; l < V; ++l) {
    if (l < lanes) {
      const S* src = images + l * n;
      const T c = shift ? shift[l] : T(0);
      for (int64_t i = 0; i < n; ++i) out[i * V + l] = static_cast<T>(src[i]) - c;
    } else {
      for (int64_t i = 0; i < n; ++i) out[i * V + l] = T(0);
    }
  }
}

template <typename T, int V>
inline typename Lanes<T, V>::vec load_lanes(const T* p) {
  typename Lanes<T, V>::vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Twiddles of one Stockham stage: radix p, sub-transform length l = p * m, stride s.
template <typename T>
struct Stage {
  int p, m, s;
  std::vector<T> wr, wi;  // w^t = exp(-2 pi i q t / l), index q * (p - 1) + t - 1
  std::vector<T> cr, ci;  // generic radix only: exp(-2 pi i k / p), k < p
};

template <typename T>
std::vector<Stage<T>> fft_plan(int n) {
  std::vector<int> radices;
  int rest = n;
  while (rest % 4 == 0) { radices.push_back(4); rest /= 4; }
  for (int p : {2, 3, 5}) {
    while (rest % p == 0) { radices.push_back(p); rest /= p; }
  }
  for (int p = 7; rest > 1; p += 2) {
    while (rest % p == 0) { radices.push_back(p); rest /= p; }
  }
  std::vector<Stage<T>> stages;
  int l = n, s = 1;
  for (int p : radices) {
    Stage<T> st;
    st.p = p;
    st.m = l / p;
    st.s = s;
    st.wr.resize(static_cast<size_t>(st.m) * (p - 1));
    st.wi.resize(st.wr.size());
    for (int q = 0; q < st.m; ++q)
      for (int t = 1; t < p; ++t) {
        const double a = -2.0 * M_PI * (static_cast<double>(q) * t) / l;
        st.wr[q * (p - 1) + t - 1] = static_cast<T>(std::cos(a));
        st.wi[q * (p - 1) + t - 1] = static_cast<T>(std::sin(a));
      }
    if (p > 5) {
      for (int k = 0; k < p; ++k) {
        st.cr.push_back(static_cast<T>(std::cos(-2.0 * M_PI * k / p)));
        st.ci.push_back(static_cast<T>(std::sin(-2.0 * M_PI * k / p)));
      }
    }
    stages.push_back(st);
    l = st.m;
    s *= p;
  }
  return stages;
}

// One transform of length n on split-complex vectors. The input is in (xr, xi); (yr, yi) is
// scratch of the same length. Returns true when the result ended in (yr, yi).
template <typename T, int V>
bool fft_run(const std::vector<Stage<T>>& plan, typename Lanes<T, V>::vec* xr, typename Lanes<T, V>::vec* xi,
             typename Lanes<T, V>::vec* yr, typename Lanes<T, V>::vec* yi) {
  typedef typename Lanes<T, V>::vec vec;
  bool swapped = false;
  for (const Stage<T>& st : plan) {
    const int p = st.p, m = st.m, s = st.s;
    for (int q = 0; q < m; ++q) {
      const T* wr = st.wr.data() + q * (p - 1);
      const T* wi = st.wi.data() + q * (p - 1);
      for (int k = 0; k < s; ++k) {
        const vec* ar = xr + k + s * q;
        const vec* ai = xi + k + s * q;
        vec* br = yr + k + s * p * q;
        vec* bi = yi + k + s * p * q;
        const int in = s * m, out = s;
        if (p == 4) {
          const vec t0r = ar[0] + ar[2 * in], t0i = ai[0] + ai[2 * in];
          const vec t1r = ar[0] - ar[2 * in], t1i = ai[0] - ai[2 * in];
          const vec t2r = ar[in] + ar[3 * in], t2i = ai[in] + ai[3 * in];
          const vec t3r = ar[in] - ar[3 * in], t3i = ai[in] - ai[3 * in];
          br[0] = t0r + t2r;
          bi[0] = t0i + t2i;
          const vec u1r = t1r + t3i, u1i = t1i - t3r;  // t1 - i t3
          const vec u2r = t0r - t2r, u2i = t0i - t2i;
          const vec u3r = t1r - t3i, u3i = t1i + t3r;  // t1 + i t3
          br[out] = u1r * wr[0] - u1i * wi[0];
          bi[out] = u1r * wi[0] + u1i * wr[0];
          br[2 * out] = u2r * wr[1] - u2i * wi[1];
          bi[2 * out] = u2r * wi[1] + u2i * wr[1];
          br[3 * out] = u3r * wr[2] - u3i * wi[2];
          bi[3 * out] = u3r * wi[2] + u3i * wr[2];
        } else if (p == 2) {
          const vec dr = ar[0] - ar[in], di = ai[0] - ai[in];
          br[0] = ar[0] + ar[in];
          bi[0] = ai[0] + ai[in];
          br[out] = dr * wr[0] - di * wi[0];
          bi[out] = dr * wi[0] + di * wr[0];
        } else if (p == 3) {
          const T h = static_cast<T>(0.86602540378443864676);  // sqrt(3) / 2
          const vec sr = ar[in] + ar[2 * in], si = ai[in] + ai[2 * in];
          const vec dr = ar[in] - ar[2 * in], di = ai[in] - ai[2 * in];
          const vec mr = ar[0] - sr * static_cast<T>(0.5), mi = ai[0] - si * static_cast<T>(0.5);
          br[0] = ar[0] + sr;
          bi[0] = ai[0] + si;
          const vec u1r = mr + di * h, u1i = mi - dr * h;  // m - i h d
          const vec u2r = mr - di * h, u2i = mi + dr * h;  // m + i h d
          br[out] = u1r * wr[0] - u1i * wi[0];
          bi[out] = u1r * wi[0] + u1i * wr[0];
          br[2 * out] = u2r * wr[1] - u2i * wi[1];
          bi[2 * out] = u2r * wi[1] + u2i * wr[1];
        } else if (p == 5) {
          const T c1 = static_cast<T>(0.30901699437494742410), c2 = static_cast<T>(-0.80901699437494742410);
          const T s1 = static_cast<T>(0.95105651629515357212), s2 = static_cast<T>(0.58778525229247312917);
          const vec p1r = ar[in] + ar[4 * in], p1i = ai[in] + ai[4 * in];
          const vec m1r = ar[in] - ar[4 * in], m1i = ai[in] - ai[4 * in];
          const vec p2r = ar[2 * in] + ar[3 * in], p2i = ai[2 * in] + ai[3 * in];
          const vec m2r = ar[2 * in] - ar[3 * in], m2i = ai[2 * in] - ai[3 * in];
          br[0] = ar[0] + p1r + p2r;
          bi[0] = ai[0] + p1i + p2i;
          const vec e1r = ar[0] + p1r * c1 + p2r * c2, e1i = ai[0] + p1i * c1 + p2i * c2;
          const vec e2r = ar[0] + p1r * c2 + p2r * c1, e2i = ai[0] + p1i * c2 + p2i * c1;
          // exp(-2 pi i k / 5) = cos - i sin: the odd parts enter as -i (s1 m1 + s2 m2) etc.
          const vec o1r = m1r * s1 + m2r * s2, o1i = m1i * s1 + m2i * s2;
          const vec o2r = m1r * s2 - m2r * s1, o2i = m1i * s2 - m2i * s1;
          const vec u[4][2] = {{e1r + o1i, e1i - o1r}, {e2r + o2i, e2i - o2r},
                               {e2r - o2i, e2i + o2r}, {e1r - o1i, e1i + o1r}};
          for (int t = 1; t < 5; ++t) {
            br[t * out] = u[t - 1][0] * wr[t - 1] - u[t - 1][1] * wi[t - 1];
            bi[t * out] = u[t - 1][0] * wi[t - 1] + u[t - 1][1] * wr[t - 1];
          }
        } else {
          for (int t = 0; t < p; ++t) {
            vec sr = ar[0], si = ai[0];
            for (int r = 1; r < p; ++r) {
              const int k2 = (r * t) % p;
              sr += ar[r * in] * st.cr[k2] - ai[r * in] * st.ci[k2];
              si += ar[r * in] * st.ci[k2] + ai[r * in] * st.cr[k2];
            }
            if (t == 0) {
              br[0] = sr;
              bi[0] = si;
            } else {
              br[t * out] = sr * wr[t - 1] - si * wi[t - 1];
              bi[t * out] = sr * wi[t - 1] + si * wr[t - 1];
            }
          }
        }
      }
    }
    std::swap(xr, yr);
    std::swap(xi, yi);
    swapped = !swapped;
  }
  return swapped;
}

// Half spectra of the rows of ny x nx real images in lane order (pixels[(y * nx + x) * V + l]),
// zero-padded to Lx: rows in pairs as one complex FFT, z = row_y + i row_{y+1}, then untangled
// (Z(k) and conj Z(-k) give both rows' spectra). Row y's Lx/2 + 1 frequencies go to
// out_r/out_i[y * (Lx/2 + 1) ...]; ar, ai, br, bi are scratch of Lx vectors.
template <typename T, int V>
void rfft_rows(const std::vector<Stage<T>>& plan_x, const T* pixels, int ny, int nx, int Lx,
               typename Lanes<T, V>::vec* ar, typename Lanes<T, V>::vec* ai, typename Lanes<T, V>::vec* br,
               typename Lanes<T, V>::vec* bi, typename Lanes<T, V>::vec* out_r, typename Lanes<T, V>::vec* out_i) {
  typedef typename Lanes<T, V>::vec vec;
  const int wc = Lx / 2 + 1;
  for (int y = 0; y < ny; y += 2) {
    const T* row0 = pixels + static_cast<size_t>(y) * nx * V;
    for (int x = 0; x < Lx; ++x) {
      ar[x] = x < nx ? load_lanes<T, V>(row0 + static_cast<size_t>(x) * V) : vec{};
      ai[x] = (x < nx && y + 1 < ny) ? load_lanes<T, V>(row0 + static_cast<size_t>(nx + x) * V) : vec{};
    }
    const bool in_b = fft_run<T, V>(plan_x, ar, ai, br, bi);
    const vec* zr = in_b ? br : ar;
    const vec* zi = in_b ? bi : ai;
    vec* r0 = out_r + static_cast<size_t>(y) * wc;
    vec* i0 = out_i + static_cast<size_t>(y) * wc;
    for (int k = 0; k < wc; ++k) {
      const int kc = k == 0 ? 0 : Lx - k;
      const vec a = zr[k], b = zi[k], c = zr[kc], d = zi[kc];
      r0[k] = (a + c) * static_cast<T>(0.5);
      i0[k] = (b - d) * static_cast<T>(0.5);
      if (y + 1 < ny) {
        r0[wc + k] = (b + d) * static_cast<T>(0.5);
        i0[wc + k] = (c - a) * static_cast<T>(0.5);
      }
    }
  }
}
