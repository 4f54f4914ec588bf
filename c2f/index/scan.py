"""Certified scans: every clip's score against a query, to within a proven bound e.

The exact video search (clip_index) scans all clips in a fast, lower precision, then rescores
exactly only the videos the bound cannot rule out. Which precision is fastest depends on the
CPU (on an Intel AMX machine a float16 matrix-vector product over 600k x 512 took 64 ms, bfloat16
27 ms; on an AMD EPYC with avx512_bf16 float16 is the fast one), so it is chosen by measurement
(c2f.tuning, task "scan"). Whatever is chosen, the results are the same: only speed differs.

The bound (all numbers for the dimension d of the index)
--------------------------------------------------------
Let x be a stored clip row, q the normalised float32 query, s = x.q their exact (real) score. The
stored rows and the query are unit vectors up to rounding: ||x||, ||q|| <= N = 1 + 2^-9 (checked
when an index is loaded). A scan returns a with |a - s| <= e, where e adds three parts.

1. The copies. A float format with unit roundoff u (float16 2^-11, bfloat16 2^-8; round to
   nearest, as torch's conversions do) changes each component by at most u|x_j| + t (t: half the
   smallest subnormal spacing, float16 2^-25, bfloat16 2^-134), so ||x~ - x|| <= dx = u N + sqrt(d) t,
   and likewise dq for the query. Then |x~.q~ - x.q| <= dx (N + dq) + N dq (Cauchy-Schwarz).
   int8 (per-row scale c_i, a bfloat16 number >= max_j |x_ij| / 127, codes k = round(x / c) in
   [-127, 127]): each component moves by at most c_i (1/2 + 127 u32), so a priori
   ||x~_i - x_i|| <= sqrt(d) c_i (1/2 + 2^-17) (up to sqrt(d) / 254 ~ 0.089 for d = 512 when one
   component holds the whole vector). The scan uses the residual r_i = ||x~_i - x_i|| measured
   when the row is encoded (float64, rounded up), which is never larger and ~1.7x smaller on
   spread-out vectors.
2. The accumulation, in float32 (u32 = 2^-24): products of two float16 or two bfloat16 numbers
   (or int8 x bfloat16) are exact in float32, and any order of d float32 additions (plus the
   int8 scale multiply) errs by at most gamma(d + 1) ||x~|| ||q~||, gamma(n) = n u32 / (1 - n u32).
   torch's CPU half-precision kernels are meant to accumulate in float32; this is checked at run
   time (`accumulates_in_float32`) and a precision that fails it is not used.
3. The result, rounded to the output format: u |r| + t with |r| <= max_i |a_i| / (1 - u) + t.

float32 scan: no copies and no result rounding, e = gamma(d) N^2 + d 2^-150. float64 (the final
rescoring): gamma_64(d) N^2 with u64 = 2^-53 (products of float32 numbers are exact in float64).
For d = 512 and scores within +-0.5 (`certificate_bounds` prints these): float32 3.1e-5,
float16 ~1.3e-3, bfloat16 ~1.0e-2, int8 ~6e-3 + r_i (r_i ~7e-3 for Gaussian-like rows).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

PRECISIONS = ("float32", "float16", "bfloat16", "int8")
U32, U64 = 2.0**-24, 2.0**-53
NORM = 1.0 + 2.0**-9  # bound on ||x|| of stored rows and ||q|| of queries
_UNIT = {"float16": 2.0**-11, "bfloat16": 2.0**-8}  # unit roundoff of each copy format
_TINY = {"float16": 2.0**-25, "bfloat16": 2.0**-134}  # half the smallest subnormal spacing
_TORCH_DTYPE = {"float16": torch.float16, "bfloat16": torch.bfloat16}
_ENCODE_ROWS = 16_384  # rows per step when a copy is encoded (bounds the temporaries)
_FLOAT32_ROWS = 262_144  # rows per step of a float32 scan over float16 storage


def gamma(n: int, unit: float = U32) -> float:
    """Relative error bound of n floating-point operations in a row (Higham's gamma_n)."""
    return n * unit / (1 - n * unit)


def float32_error(dim: int) -> float:
    """|a - s| of a float32 scan (and of the float32 rescoring) for unit vectors."""
    return gamma(dim) * NORM**2 + dim * 2.0**-150


def float64_error(dim: int) -> float:
    """|a - s| of the final float64 rescoring: float32 inputs, exact products, d additions."""
    return gamma(dim, U64) * NORM**2


def copy_error(precision: str, dim: int) -> float:
    """Bound on ||fl(v) - v|| for ||v|| <= NORM when v is rounded to the given float format."""
    return _UNIT[precision] * NORM + math.sqrt(dim) * _TINY[precision]


def int8_residual_a_priori(dim: int, scale: float) -> float:
    """Bound on ||k c - x|| of one int8-coded row with scale c (see the module doc)."""
    return math.sqrt(dim) * scale * (0.5 + 2.0**-17)


def _float_scan_error(precision: str, dim: int, max_abs: float, dx: float | np.ndarray, dq: float):
    """Parts 1-3 of the module doc for a float16/bfloat16 (or int8, dx = residual) scan."""
    u, t = _UNIT[precision], _TINY[precision]
    copies = dx * (NORM + dq) + NORM * dq
    accumulation = gamma(dim + 1) * (NORM + dx) * (NORM + dq) + dim * 2.0**-150
    result = u * (max_abs / (1 - u) + t) + t
    return copies + accumulation + result


def certificate_bounds(
    dim: int, max_abs: float = 1.0, int8_residual: float | None = None
) -> dict[str, float]:
    """e of each scan precision for unit vectors of dimension `dim` and |scores| <= max_abs; int8
    with the given row residual (default: the a-priori worst case, one component = the row)."""
    residual = (
        int8_residual if int8_residual is not None else int8_residual_a_priori(dim, (1 + 2.0**-7) / 127)
    )
    return {
        "float32": float32_error(dim),
        "float16": _float_scan_error(
            "float16", dim, max_abs, copy_error("float16", dim), copy_error("float16", dim)
        ),
        "bfloat16": _float_scan_error(
            "bfloat16", dim, max_abs, copy_error("bfloat16", dim), copy_error("bfloat16", dim)
        ),
        "int8": float(_float_scan_error("bfloat16", dim, max_abs, residual, copy_error("bfloat16", dim))),
        "float64": float64_error(dim),
    }


class _Rows:
    """Growable (n, *shape) torch buffer: appends cost the new rows only, deletes one compaction."""

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        self._buf = torch.empty((0, *shape), dtype=dtype)
        self.n = 0

    def reserve(self, n: int) -> None:
        if n > len(self._buf):
            grown = torch.empty((n, *self._buf.shape[1:]), dtype=self._buf.dtype)
            grown[: self.n] = self._buf[: self.n]
            self._buf = grown

    def append(self, rows: torch.Tensor) -> None:
        need = self.n + len(rows)
        if need > len(self._buf):
            self.reserve(max(need, len(self._buf) * 3 // 2))
        self._buf[self.n : need] = rows
        self.n = need

    def keep(self, mask: np.ndarray) -> None:
        kept = self._buf[: self.n][torch.from_numpy(mask)]
        self.n = len(kept)
        if self.n < len(self._buf) // 2:  # give memory back after large removals
            self._buf = kept.clone()
        else:
            self._buf[: self.n] = kept

    def view(self) -> torch.Tensor:
        return self._buf[: self.n]

    @property
    def nbytes(self) -> int:
        return self._buf.numel() * self._buf.element_size()


class Scan:
    """Scores of every row of the index against a query, each within `video_bounds`' error.

    `source()` returns the stored rows ((n, d) float32 or float16, storage order); scans that keep
    a copy follow the index through `append` (new stored rows) and `keep` (a row mask)."""

    precision = "float32"

    def __init__(self, dim: int, source: Callable[[], np.ndarray]) -> None:
        self.dim, self._source = dim, source

    def build(self) -> Scan:
        """Encode the copy from the stored rows (no-op for scans that read the storage)."""
        return self

    def append(self, rows: np.ndarray) -> None:
        pass

    def keep(self, mask: np.ndarray) -> None:
        pass

    @property
    def nbytes(self) -> int:
        return 0

    def scores(self, q: np.ndarray) -> np.ndarray:
        """(n,) float32 approximate scores of every row with the float32 query (d,)."""
        x = self._source()
        qt = torch.from_numpy(np.ascontiguousarray(q, np.float32))
        if x.dtype == np.float32:
            return torch.mv(torch.from_numpy(x), qt).numpy()
        return np.concatenate(
            [
                torch.mv(torch.from_numpy(x[s : s + _FLOAT32_ROWS]).float(), qt).numpy()
                for s in range(0, len(x), _FLOAT32_ROWS)
            ]
            or [np.zeros(0, np.float32)]
        )

    def error(self, scores: np.ndarray) -> float | np.ndarray:
        """|scores - exact| bound: one number, or one per row."""
        return float32_error(self.dim)

    def video_error(self, scores: np.ndarray, starts: np.ndarray) -> float | np.ndarray:
        """The bound for each video's best score (videos start at rows `starts`): one number, or
        (V,) the largest bound of each video's rows."""
        err = self.error(scores)
        return err if np.isscalar(err) else np.maximum.reduceat(err, starts)


class HalfScan(Scan):
    """float16 or bfloat16 copy (float16 storage scans its own rows for float16: no copy)."""

    def __init__(self, dim: int, source: Callable[[], np.ndarray], precision: str) -> None:
        super().__init__(dim, source)
        self.precision, self._dtype = precision, _TORCH_DTYPE[precision]
        self._rows = _Rows((dim,), self._dtype)
        self._shares_storage = False

    def build(self) -> HalfScan:
        x = self._source()
        self._shares_storage = self.precision == "float16" and x.dtype == np.float16
        if not self._shares_storage:
            self._rows = _Rows((self.dim,), self._dtype)
            self._rows.reserve(len(x))
            for s in range(0, len(x), _ENCODE_ROWS):
                self.append(x[s : s + _ENCODE_ROWS])
        return self

    def append(self, rows: np.ndarray) -> None:
        if not self._shares_storage:
            self._rows.append(torch.from_numpy(np.ascontiguousarray(rows)).to(self._dtype))

    def keep(self, mask: np.ndarray) -> None:
        if not self._shares_storage:
            self._rows.keep(mask)

    @property
    def nbytes(self) -> int:
        return 0 if self._shares_storage else self._rows.nbytes

    def _matrix(self) -> torch.Tensor:
        return torch.from_numpy(self._source()) if self._shares_storage else self._rows.view()

    def scores(self, q: np.ndarray) -> np.ndarray:
        qt = torch.from_numpy(np.ascontiguousarray(q, np.float32)).to(self._dtype)
        return torch.mv(self._matrix(), qt).float().numpy()

    def error(self, scores: np.ndarray) -> float:
        dx = 0.0 if self._shares_storage else copy_error(self.precision, self.dim)
        return float(
            _float_scan_error(
                self.precision, self.dim, _max_abs(scores), dx, copy_error(self.precision, self.dim)
            )
        )


class Int8Scan(Scan):
    """int8 codes with one bfloat16 scale per row; bfloat16 query; torch's int8 weight kernel."""

    precision = "int8"

    def __init__(self, dim: int, source: Callable[[], np.ndarray]) -> None:
        super().__init__(dim, source)
        self._codes = _Rows((dim,), torch.int8)
        self._scales = _Rows((), torch.bfloat16)
        self._residuals = _Rows((), torch.float32)  # measured ||k c - x|| per row, rounded up
        self._video_residuals: tuple[np.ndarray, np.ndarray] | None = None

    def build(self) -> Int8Scan:
        x = self._source()
        for rows in (self._codes, self._scales, self._residuals):
            rows.reserve(len(x))
        for s in range(0, len(x), _ENCODE_ROWS):
            self.append(x[s : s + _ENCODE_ROWS])
        return self

    def append(self, rows: np.ndarray) -> None:
        codes, scales, residuals = encode_int8(rows)
        self._codes.append(codes)
        self._scales.append(scales)
        self._residuals.append(residuals)

    def keep(self, mask: np.ndarray) -> None:
        for rows in (self._codes, self._scales, self._residuals):
            rows.keep(mask)

    @property
    def nbytes(self) -> int:
        return self._codes.nbytes + self._scales.nbytes + self._residuals.nbytes

    def residuals(self) -> np.ndarray:
        return self._residuals.view().numpy()

    def scores(self, q: np.ndarray) -> np.ndarray:
        qt = torch.from_numpy(np.ascontiguousarray(q, np.float32)).to(torch.bfloat16)[None]  # (1, d)
        out = torch.ops.aten._weight_int8pack_mm(qt, self._codes.view(), self._scales.view())  # (1, n)
        return out[0].float().numpy()

    def error(self, scores: np.ndarray) -> np.ndarray:
        return self._error(scores, self.residuals())  # (n,)

    def video_error(self, scores: np.ndarray, starts: np.ndarray) -> np.ndarray:
        # The bound grows with the residual: a video's largest is that of its largest residual,
        # kept until the rows change (`starts` is a new array after every update).
        if self._video_residuals is None or self._video_residuals[0] is not starts:
            self._video_residuals = (starts, np.maximum.reduceat(self.residuals(), starts))
        return self._error(scores, self._video_residuals[1])  # (V,)

    def _error(self, scores: np.ndarray, residuals: np.ndarray) -> np.ndarray:
        return _float_scan_error(
            "bfloat16", self.dim, _max_abs(scores), residuals, copy_error("bfloat16", self.dim)
        )


def _max_abs(scores: np.ndarray) -> float:
    return max(float(scores.max()), -float(scores.min())) if len(scores) else 0.0


def encode_int8(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(m, d) rows -> int8 codes (m, d), bfloat16 scales (m,) with c >= max|x| / 127, and the
    residual norms ||k c - x|| (m,) float32, computed in float64 and rounded up."""
    x = torch.from_numpy(np.ascontiguousarray(rows)).float()  # (m, d)
    need = x.abs().amax(1) / 127  # (m,)
    scales = need.to(torch.bfloat16)
    low = scales.float() < need
    if bool(low.any()):  # next bfloat16 up: positive numbers order as their bit patterns
        scales[low] = (scales[low].view(torch.int16) + 1).view(torch.bfloat16)
    c = scales.float()
    codes = torch.round(x / c[:, None]).clamp_(-127, 127).to(torch.int8)
    residuals = (codes.double() * c.double()[:, None] - x.double()).norm(dim=1) * (1 + 2.0**-40)
    up = residuals.float()
    up = torch.where(
        up.double() < residuals, torch.nextafter(up, torch.tensor(np.inf, dtype=torch.float32)), up
    )
    return codes, scales, up


def make_scan(precision: str, dim: int, source: Callable[[], np.ndarray]) -> Scan:
    """An unbuilt scan of the given precision over `source()`'s rows."""
    if precision == "float32":
        return Scan(dim, source)
    if precision in _TORCH_DTYPE:
        return HalfScan(dim, source, precision)
    if precision == "int8":
        return Int8Scan(dim, source)
    raise ValueError(f"scan precision must be one of {PRECISIONS}, not {precision!r}")


# --- the run-time check of float32 accumulation ------------------------------------------------
PROBE_MIN_DIM = 16


def accumulation_probe(dim: int, rows: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """(rows (R, dim) float32, query (dim,) float32, exact score of every row).

    Each row holds +127/128 and -127/128 at two of 8 spread positions where the query is 2^6
    (products +-63.5, cancelling), and 2^-7 at m others where the query is 2^-5 (products 2^-12);
    m = 2^p - 1 <= 255. Every number is exact in float16, bfloat16 and int8 with scale 2^-7, and
    every partial sum of any order needs <= 19 bits, so float32 accumulation returns exactly
    m 2^-12, which float16 and bfloat16 can hold. Accumulating in float16 or bfloat16 loses the
    2^-12 terms next to +-63.5 (their spacing there is 2^-5 or 2^-2): the result differs."""
    if dim < PROBE_MIN_DIM:
        raise ValueError(f"the accumulation probe needs dim >= {PROBE_MIN_DIM}, not {dim}")
    rng = np.random.default_rng(seed)
    big = np.unique(np.linspace(0, dim - 1, 8).round().astype(np.int64))
    small = np.setdiff1d(np.arange(dim), big)
    m = min(255, 2 ** int(math.log2(len(small) + 1)) - 1)
    x = np.zeros((rows, dim), np.float32)
    for r in range(rows):
        i, j = rng.choice(big, 2, replace=False)
        x[r, i], x[r, j] = 127 / 128, -127 / 128
        x[r, rng.choice(small, m, replace=False)] = 2.0**-7
    q = np.full(dim, 2.0**-5, np.float32)
    q[big] = 2.0**6
    return x, q, m * 2.0**-12


def accumulates_in_float32(product: Callable[[np.ndarray, np.ndarray], np.ndarray], dim: int) -> bool:
    """Whether `product(rows, query)` (the scores of a scan built on the rows) returns the probe's
    exact scores, as float32 accumulation must (see `accumulation_probe`)."""
    x, q, exact = accumulation_probe(dim)
    try:
        got = np.asarray(product(x, q), np.float64)
    except Exception:  # a kernel this build lacks
        return False
    return got.shape == (len(x),) and bool((got == exact).all())


@functools.cache
def scan_is_safe(precision: str, dim: int) -> bool:
    """Checked once per process: float32 is always safe; a smaller precision must pass the probe
    on this machine's kernels (at least dimension PROBE_MIN_DIM)."""
    if precision == "float32":
        return True
    if dim < PROBE_MIN_DIM:
        return False
    return accumulates_in_float32(lambda x, q: make_scan(precision, dim, lambda: x).build().scores(q), dim)
