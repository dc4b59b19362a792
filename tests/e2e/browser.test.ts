// The browser tests need no system browser: the Chromium inside the npm package
// @sparticuz/chromium starts on a machine that has only Node and npm. It links against the
// system's NSS libraries, which slim images lack, so the package's own copies stand in for them.
import { spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import {
  bundledLibraries,
  CHROMIUM_ARGS,
  missingLibraries,
  packagedChromium,
} from '../helpers/browser.ts';

describe('the Chromium from npm', () => {
  it(
    'links against the NSS libraries bundled in @sparticuz/chromium and renders a page with them first on LD_LIBRARY_PATH',
    async () => {
      const executable = await packagedChromium();
      const lib = await bundledLibraries();
      const env = { ...process.env, LD_LIBRARY_PATH: lib };

      const linked = spawnSync('ldd', [executable], { encoding: 'utf8', env }).stdout;
      for (
        const name of ['libnss3.so', 'libnssutil3.so', 'libnspr4.so', 'libplc4.so', 'libplds4.so']
      ) {
        expect(linked).toContain(`${name} => ${lib}/${name}`);
      }
      expect(missingLibraries(executable, env)).toEqual([]);

      const browser = await chromium.launch({
        executablePath: executable,
        headless: true,
        args: [...CHROMIUM_ARGS],
        env,
        timeout: 60_000,
      });
      try {
        const page = await browser.newPage();
        await page.setContent(
          '<p id="p">rendered</p><script>document.getElementById("p").textContent += " and scripted"</script>',
        );
        expect(await page.locator('#p').innerText()).toBe('rendered and scripted');
      } finally {
        await browser.close();
      }
    },
    120_000,
  );
});
