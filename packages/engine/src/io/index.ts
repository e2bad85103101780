export {
  describeFileSystemFailure,
  type FileSystemFailure,
  type FileSystemProblem,
  fileSystemFailure,
  ModelFileError,
  type ModelFileProblem,
} from './errors.js';
export { type FileSystemOptions, fileSystem, MODEL_JSON_FILE, WEIGHTS_FILE } from './file-system.js';
export { FILE_SCHEME, registerFileRouter } from './router.js';
export { createDirectory, temporaryPath } from './temporary.js';
export { withSeparableDepthMultipliers } from './topology.js';
