export { BenchError } from './errors.js';
