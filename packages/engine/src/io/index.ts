export { ModelFileError, type ModelFileProblem } from './errors.js';
export { fileSystem, MODEL_JSON_FILE, WEIGHTS_FILE } from './file-system.js';
export { FILE_SCHEME, registerFileRouter } from './router.js';
