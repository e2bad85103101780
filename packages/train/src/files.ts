/** Whether `error` is a Node file-system error with `code` (e.g. `ENOENT`). */
export function isNodeError(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
