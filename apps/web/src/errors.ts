/**
 * Base class of every error this package throws on purpose (page not built, a model the page cannot run, a
 * port it cannot listen on), whose message names the problem and the fix. Catch it to handle all of them at
 * once; anything else is a bug.
 */
export abstract class WebError extends Error {}
