import { EVD, Matrix } from 'ml-matrix';
import type { TuckerRanks } from './ranks.js';

/** Tucker-2 factors of a convolution kernel: K[i,j,c,o] ≈ Σ_ab U_in[c,a] · G[i,j,a,b] · U_out[o,b]. */
export interface TuckerFactors {
  /** U_in, C_in × r_in, orthonormal columns: the first 1×1 convolution's kernel. */
  input: Matrix;
  /** G, the core kernel `[k_h, k_w, r_in, r_out]` (tfjs layout, flattened). */
  core: Float32Array;
  /** U_out, C_out × r_out, orthonormal columns: the last 1×1 convolution's kernel, transposed. */
  output: Matrix;
  /** ‖K − K̂‖ / ‖K‖ (Frobenius). */
  relativeError: number;
}

/** The `count` eigenvectors of a symmetric matrix with the largest eigenvalues, as columns. */
function leadingEigenvectors(symmetric: Matrix, count: number): Matrix {
  const evd = new EVD(symmetric, { assumeSymmetric: true });
  const values = evd.realEigenvalues;
  const order = values.map((_, i) => i).sort((x, y) => values[y]! - values[x]!);
  return evd.eigenvectorMatrix.subMatrixColumn(order.slice(0, count));
}

/**
 * Tucker-2 decomposition of a kernel by HOSVD (Kim et al. 2016): U_in and U_out are the leading left
 * singular vectors of the kernel's input- and output-channel unfoldings (taken as eigenvectors of the
 * unfoldings' Gram matrices), and the core is G = K ×_in U_inᵀ ×_out U_outᵀ.
 * `kernel` is in tfjs layout `[k_h, k_w, C_in, C_out]`, flattened.
 */
export function hosvd(
  kernel: Float32Array,
  [kh, kw, cin, cout]: readonly [number, number, number, number],
  [rIn, rOut]: TuckerRanks,
): TuckerFactors {
  // The kernel as k_h·k_w spatial slices, each a C_in × C_out matrix.
  const slices = Array.from({ length: kh * kw }, (_, s) =>
    Matrix.from1DArray(cin, cout, kernel.subarray(s * cin * cout, (s + 1) * cin * cout)),
  );
  // Gram matrices of the two unfoldings: Σ_s S_s S_sᵀ (C_in × C_in) and Σ_s S_sᵀ S_s (C_out × C_out).
  const inGram = new Matrix(cin, cin);
  const outGram = new Matrix(cout, cout);
  for (const slice of slices) {
    inGram.add(slice.mmul(slice.transpose()));
    outGram.add(slice.transpose().mmul(slice));
  }
  const input = leadingEigenvectors(inGram, rIn);
  const output = leadingEigenvectors(outGram, rOut);
  const core = new Float32Array(kh * kw * rIn * rOut);
  let coreEnergy = 0;
  for (const [s, slice] of slices.entries()) {
    const projected = input.transpose().mmul(slice).mmul(output);
    core.set(projected.to1DArray(), s * rIn * rOut);
    coreEnergy += projected.norm() ** 2;
  }
  // K̂ is an orthogonal projection of K, so ‖K − K̂‖² = ‖K‖² − ‖K̂‖², and ‖K̂‖ = ‖G‖.
  const energy = kernel.reduce((sum, v) => sum + v * v, 0);
  const relativeError = energy === 0 ? 0 : Math.sqrt(Math.max(energy - coreEnergy, 0) / energy);
  return { input, core, output, relativeError };
}
