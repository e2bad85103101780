// The sandboxed processor file when the package runs from its TypeScript sources (BullMQ imports it in a
// child process and calls its default export per job).
import './register.mjs';

const { default: processor } = await import('../processor.ts');
export default processor;
