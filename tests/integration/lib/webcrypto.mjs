// @azure/cosmos 4.9.3 calls globalThis.crypto.randomUUID(). Node 20+ has the
// global; Node 18 (Debian's nodejs) has it only with
// --experimental-global-webcrypto, which run.mjs passes. Import this module
// before the SDK so a test file started some other way works too.
import { webcrypto } from "node:crypto";

if (typeof globalThis.crypto === "undefined") {
  globalThis.crypto = webcrypto;
}
