/**
 * The dense linear algebra of the merge engine in one import: matrix type and helpers, GEMM (native
 * onnxruntime kernel with a JavaScript fallback), QR, SVD, symmetric eigendecomposition, randomized
 * SVD and the seeded random stream.
 */
export {
  type Mat,
  mat,
  eye,
  fromRows,
  clone,
  transpose,
  transposeData,
  sliceCols,
  sliceRows,
  hcat,
  vcat,
  frobenius,
  scaleCols,
  powerOfTwoScale,
} from "./matrix.js";
export {
  type GemmBackend,
  type GemmOptions,
  configureGemm,
  gemmBackendInfo,
  gemmF32,
  gemmF64,
  gram,
  matmul,
  matmulF32Fast,
  matmulF64Fast,
} from "./gemm.js";
export { type QrFactorization, qr, qrFactor } from "./qr.js";
export { cholesky, invertLower } from "./cholqr.js";
export { type Svd, svd } from "./svd.js";
export { type SymEig, symEig } from "./symeig.js";
export {
  type LinearOperator,
  type RandomizedSvdOptions,
  f32Operator,
  matOperator,
  randomizedSvd,
} from "./rsvd.js";
export { Rng, seedFrom, splitmix64, fnv1a64, encodePart } from "./rng.js";
export { releaseScratch, scratchBytes } from "./workspace.js";
