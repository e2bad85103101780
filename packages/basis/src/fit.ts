import { Matrix, solve } from 'ml-matrix';

/** The basis chosen from a trained layer's filters and the least-squares coefficients of the others. */
export interface BasisFit {
  /** Filters (rows of W) kept as the basis, ascending. */
  basisRows: number[];
  /** The other filters, ascending: the outputs formed as combinations. */
  combinationRows: number[];
  /**
   * A' row-major, `combinationRows.length × basisRows.length`: filter `combinationRows[r]` ≈
   * Σ_t A'[r, t] · filter `basisRows[t]`.
   */
  coefficients: Float64Array;
  /** ‖W − [I; A'] B‖_F / ‖W‖_F (0 for an all-zero W). */
  relativeError: number;
}

function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/**
 * Chooses m of the n filters as a basis and fits the others to it by least squares.
 *
 * `kernel` is a conv kernel's data in tfjs layout `[kh, kw, C_in, n]` flattened, i.e. Wᵀ (D × n, row-major,
 * D = kh·kw·C_in): column j is filter j. Selection is column-pivoted QR of Wᵀ (Businger–Golub, by modified
 * Gram–Schmidt: ml-matrix's QR has no pivoting): each step takes the filter with the largest component
 * outside the span of those already taken. The same factorisation Wᵀ[:, basis] = Q R11,
 * Wᵀ[:, rest] ≈ Q R12 gives the least-squares coefficients A'ᵀ = R11⁻¹ R12, solved with ml-matrix
 * (by SVD, i.e. minimum norm, when the chosen filters are linearly dependent).
 */
export function fitBasis(kernel: ArrayLike<number>, n: number, m: number): BasisFit {
  const depth = kernel.length / n;
  if (!Number.isInteger(depth) || m < 1 || m > n) {
    throw new RangeError(`fitBasis: need 1 ≤ m ≤ n and kernel.length divisible by n (m=${m}, n=${n}).`);
  }
  const original: Float64Array[] = [];
  for (let j = 0; j < n; j++) {
    const column = new Float64Array(depth);
    for (let d = 0; d < depth; d++) column[d] = kernel[d * n + j]!;
    original.push(column);
  }
  const residual = original.map((c) => Float64Array.from(c));
  const norms = residual.map((c) => dot(c, c));
  const totalNorm = norms.reduce((s, v) => s + v, 0);
  const chosen = new Uint8Array(n);
  const pivots: number[] = [];
  const r = new Matrix(m, n);
  let rankDeficient = false;
  for (let t = 0; t < m; t++) {
    let p = -1;
    for (let j = 0; j < n; j++) if (!chosen[j] && (p < 0 || norms[j]! > norms[p]!)) p = j;
    chosen[p] = 1;
    pivots.push(p);
    const length = Math.sqrt(norms[p]!);
    r.set(t, p, length);
    if (length <= 1e-10 * Math.sqrt(totalNorm)) {
      // Every remaining filter is (numerically) in the span already: nothing left to orthogonalise against.
      rankDeficient = true;
      continue;
    }
    const q = residual[p]!.map((v) => v / length);
    for (let j = 0; j < n; j++) {
      if (chosen[j]) continue;
      const column = residual[j]!;
      const coefficient = dot(q, column);
      let norm = 0;
      for (let d = 0; d < depth; d++) {
        const v = column[d]! - coefficient * q[d]!;
        column[d] = v;
        norm += v * v;
      }
      norms[j] = norm;
      r.set(t, j, coefficient);
    }
  }
  const basisRows = [...pivots].sort((a, b) => a - b);
  const combinationRows: number[] = [];
  for (let j = 0; j < n; j++) if (!chosen[j]) combinationRows.push(j);
  const coefficients = new Float64Array(combinationRows.length * m);
  if (combinationRows.length > 0) {
    const r11 = r.subMatrixColumn(pivots);
    const r12 = r.subMatrixColumn(combinationRows);
    // X (m × rest) in pivot order; row of pivot t goes to the position of pivots[t] in basisRows.
    const x = solve(r11, r12, rankDeficient);
    const position = new Map(basisRows.map((row, t) => [row, t]));
    for (let t = 0; t < m; t++) {
      const to = position.get(pivots[t]!)!;
      for (let c = 0; c < combinationRows.length; c++) coefficients[c * m + to] = x.get(t, c);
    }
  }
  return {
    basisRows,
    combinationRows,
    coefficients,
    relativeError: reconstructionError(original, basisRows, combinationRows, coefficients, totalNorm),
  };
}

/** ‖W − [I; A'] B‖_F / ‖W‖_F computed from the fitted coefficients (not from the QR residuals). */
function reconstructionError(
  filters: Float64Array[],
  basisRows: number[],
  combinationRows: number[],
  coefficients: Float64Array,
  totalNorm: number,
): number {
  if (totalNorm === 0) return 0;
  const m = basisRows.length;
  let error = 0;
  combinationRows.forEach((row, c) => {
    const approximation = new Float64Array(filters[row]!.length);
    for (let t = 0; t < m; t++) {
      const a = coefficients[c * m + t]!;
      const basis = filters[basisRows[t]!]!;
      for (let d = 0; d < approximation.length; d++) approximation[d]! += a * basis[d]!;
    }
    const target = filters[row]!;
    for (let d = 0; d < approximation.length; d++) error += (target[d]! - approximation[d]!) ** 2;
  });
  return Math.sqrt(error / totalNorm);
}
