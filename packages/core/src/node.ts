// Node-only parts of core, exported as `@decompose/core/node`: they import node:path, node:url and packages
// by name, which a browser bundle cannot (and should not try to) include.

export { type LoadStrategyPluginOptions, loadStrategyPlugin } from './plugin.js';
