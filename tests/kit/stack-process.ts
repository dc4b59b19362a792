// The local stack in a process of its own, for test files whose environment is a DOM
// (happy-dom): its globals (Request, Headers, crypto…) would replace Node's under the stand-ins
// if the stack ran in the test's process. Prints {apiUrl, anonKey} as one JSON line once it
// listens, and stops when its stdin closes (the test file ended, or died).
import { type StackOptions, startStack } from '../../dev/stack.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as StackOptions;
const stack = await startStack({
  functions: true,
  bcryptCost: 4,
  ...options,
  port: 0,
  log: () => {},
  onEmail: () => {},
});
process.stdout.write(`${JSON.stringify({ apiUrl: stack.apiUrl, anonKey: stack.keys.anonKey })}\n`);
process.stdin.on('end', () => {
  stack.stop().finally(() => process.exit(0));
});
process.stdin.resume();
