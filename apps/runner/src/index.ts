export { formatSmoke, runSmoke, type SmokeResult } from './smoke.js';
