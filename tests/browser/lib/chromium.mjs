// Debian's Chromium for the browser tests and the views bench: headless,
// no network of its own, a fresh profile each time (launch() refuses
// --user-data-dir, so the profile comes through launchPersistentContext).
// The caller closes the context and removes the profile folder.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export async function launchChromium({ width = 1400, height = 900 } = {}) {
  const profile = await mkdtemp(join(tmpdir(), 'capatlas-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width, height },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return { ctx, profile };
}
