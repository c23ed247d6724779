// A real guest's console in a browser (lab 23, one host): the lab's bootable guest deployed through the
// API and a real agent whose console proxy listens on loopback; createConsoleEndpoint's `url` opened in
// headless Chromium shows the guest's screen (noVNC's canvas, not one colour; screenshot in
// .artifacts/ui/, MOLD_TEST_ARTIFACTS). The token opens one session: the page opened again, or with a
// token past its expiry, gets none (the agent logs why). Where the CloudStack UI build is there too,
// its console button on the VM's page opens the same kind of page. Every request to a non-loopback
// address is refused. Needs root (the lab) and Debian's chromium; skipped otherwise.
import { join } from 'node:path';
import type { BrowserContext, ElementHandle, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labAt, type Lab } from '../lab/lab.ts';
import { ARTIFACTS, chromiumAvailable, clickWhenStill, coveredBy, launchBrowser, logIn, LOOPBACK, openUiPage, uiAvailable, UI_DIR, type LaunchedBrowser, type UiPage } from '../support/browser.ts';
import { adminClient } from '../support/client.ts';
import { waitForGuest } from '../support/guest.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { buildVmWorld, type VmWorld } from '../support/vm-world.ts';
import { patience, sleep, until, waitFor } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const available = isRoot && chromiumAvailable;
const lab = labAt(23);

/** What the console page's canvas holds: its size, how many colours, and the share of all but the commonest. */
interface Screen {
  state: string;
  status: string;
  width: number;
  height: number;
  colours: number;
  other: number;
}

/** Evaluated in the console page (a string: the project's TypeScript knows no DOM). */
const READ_SCREEN = `(() => {
  const status = document.getElementById('status');
  const canvas = document.querySelector('#screen canvas');
  const screen = { state: status ? status.dataset.state : '', status: status ? status.textContent : '', width: canvas ? canvas.width : 0, height: canvas ? canvas.height : 0, colours: 0, other: 0 };
  if (!canvas || !canvas.width || !canvas.height) return screen;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const counts = new Map();
  for (let i = 0; i < data.length; i += 4) {
    const colour = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    counts.set(colour, (counts.get(colour) || 0) + 1);
  }
  let top = 0;
  for (const n of counts.values()) top = Math.max(top, n);
  return { ...screen, colours: counts.size, other: 1 - top / (data.length / 4) };
})()`;

const readScreen = (page: Page) => page.evaluate(READ_SCREEN) as Promise<Screen>;

/** Refuses every request to a non-loopback address; keeps what was asked for. */
async function loopbackOnly(page: Page, requested: string[]) {
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    const url = new URL(request.url());
    requested.push(request.url());
    if (url.protocol !== 'data:' && url.protocol !== 'blob:' && !LOOPBACK.has(url.hostname)) return void request.abort('blockedbyclient');
    void request.continue();
  });
}

/** The guest's screen, once the page is connected and the canvas shows more than one colour. */
const screenShown = (page: Page) =>
  until('the console page to show the guest\'s screen', () => readScreen(page), (s) => s.state === 'connected' && s.colours > 1, { within: 30_000, every: 250 });

/** A page that was given no session: the proxy refused its websocket. */
const refusedPage = (page: Page) => until('the console page to give up', () => readScreen(page), (s) => s.state === 'failed', { within: 30_000, every: 250 });

/** The ticket's expiry (seconds since the epoch), read from the token's payload. */
const expiryOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp as number;

/**
 * An enabled console button (upstream's Console widget: a button with the "code" icon) whose centre
 * nothing covers. The VM's page has two, the header's and the details card's; the header's may lie under
 * the UI's "Network Error" notification (for the release notes request this test refuses), so the one a
 * person would take.
 */
async function uncoveredConsoleButton(page: Page): Promise<ElementHandle> {
  let found: ElementHandle | undefined;
  await waitFor('an enabled console button with nothing over it', async () => {
    for (const button of await page.$$('button:has(.anticon-code):not([disabled])')) {
      if ((await button.boundingBox()) && (await coveredBy(button)) === '') {
        found = button;
        return true;
      }
    }
    return false;
  }, { within: 60_000, every: 250 });
  return found!;
}

/** The console page a click on the UI's console button opens; if none, what the UI asked and lost. */
async function consoleOpenedBy(ui: UiPage, button: ElementHandle): Promise<Page> {
  await clickWhenStill(button, 'the console button');
  try {
    const target = await ui.page.browserContext().waitForTarget((t) => t.url().includes('/resource/noVNC/vnc.html'), { timeout: patience(30_000) });
    return (await target.page())!;
  } catch {
    const answered = ui.calls.filter((call) => call.command === 'createConsoleEndpoint').map((call) => call.status);
    throw new Error(`the console page did not open; createConsoleEndpoint answered ${JSON.stringify(answered)}; the page's failed requests: ${JSON.stringify(ui.failed)}`);
  }
}

const suite = available ? describe : describe.skip;
suite(available ? 'a real guest\'s console in a browser' : 'a real guest\'s console in a browser (skipped: needs root and chromium)', () => {
  let labInfo: Lab;
  let runtime: RunningRuntime;
  let world: VmWorld;
  let browser: LaunchedBrowser;
  let vm: any;

  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(1), startRuntime({ env: { ...(uiAvailable && { MOLD_UI_DIR: UI_DIR }) } })]);
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'consolelab', template: 'guest', network: 'untagged' });
    vm = (await world.done('deployVirtualMachine', world.deployParams('console-guest'))).virtualmachine;
    // Booted to its userland: the screen holds the boot's text, not only the firmware's.
    await waitForGuest(vm.nic[0].ipaddress, `${vm.name} to boot`);
    browser = await launchBrowser();
  }, patience(300_000));

  afterAll(async () => {
    await browser?.close();
    if (vm) await world.done('destroyVirtualMachine', { id: vm.id, expunge: true }).catch(() => {});
    await world?.close();
    await runtime?.stop();
    await lab.down();
  }, patience(120_000));

  async function newPage(): Promise<{ context: BrowserContext; page: Page; requested: string[] }> {
    const context = await browser.browser.createBrowserContext();
    const page = await context.newPage();
    await page.setViewport({ width: 1024, height: 700 });
    const requested: string[] = [];
    await loopbackOnly(page, requested);
    return { context, page, requested };
  }

  const consoleUrl = async (params: Record<string, string | number> = {}) => {
    const endpoint = (await world.ok('createConsoleEndpoint', { virtualmachineid: vm.id, ...params })).consoleendpoint;
    expect(endpoint.success, JSON.stringify(endpoint)).toBe(true);
    return endpoint as { url: string; websocket: { token: string; host: string; port: string; path: string } };
  };

  it('opens the console URL in a browser: noVNC shows the guest\'s screen', async () => {
    const endpoint = await consoleUrl();
    expect(endpoint.url).toMatch(new RegExp(`^http://${world.consoleListen.replace(/\./g, '\\.')}/resource/noVNC/vnc\\.html\\?autoconnect=true&port=\\d+&token=mc1\\.`));
    const { context, page, requested } = await newPage();
    try {
      await page.goto(endpoint.url, { waitUntil: 'domcontentloaded' });
      const screen = await screenShown(page);
      // A VGA text or framebuffer console: hundreds of pixels across, and the text is not the background.
      expect(screen.width).toBeGreaterThanOrEqual(640);
      expect(screen.height).toBeGreaterThanOrEqual(400);
      expect(screen.other).toBeGreaterThan(0);
      await page.screenshot({ path: join(ARTIFACTS, 'console-guest.png') });
      // Only the proxy's own files: the page, its script and style, noVNC's modules.
      expect(requested.filter((url) => !url.startsWith(`http://${world.consoleListen}/resource/noVNC/`))).toEqual([]);
    } finally {
      await context.close();
    }
  }, patience(90_000));

  it('gives no session to the page opened again with the same token, nor to an expired token', async () => {
    const endpoint = await consoleUrl();
    const first = await newPage();
    try {
      await first.page.goto(endpoint.url, { waitUntil: 'domcontentloaded' });
      await screenShown(first.page);
    } finally {
      await first.context.close();
    }
    const again = await newPage();
    try {
      await again.page.goto(endpoint.url, { waitUntil: 'domcontentloaded' });
      expect((await refusedPage(again.page)).status).toMatch(/expired or was used already/);
      await again.page.screenshot({ path: join(ARTIFACTS, 'console-replayed.png') });
    } finally {
      await again.context.close();
    }
    await waitFor('the agent to log the refusal', () => /console refused.*the token has been used already/.test(world.agent.output()));

    // The shortest validity the setting allows; the page is opened once the ticket's own expiry has passed.
    await world.ok('updateConfiguration', { name: 'console.token.validity', value: 5 });
    let shortLived: Awaited<ReturnType<typeof consoleUrl>>;
    try {
      shortLived = await consoleUrl();
    } finally {
      await world.ok('updateConfiguration', { name: 'console.token.validity', value: 60 });
    }
    await sleep(Math.max(0, expiryOf(shortLived.websocket.token) * 1000 + 1000 - Date.now()));
    const late = await newPage();
    try {
      await late.page.goto(shortLived.url, { waitUntil: 'domcontentloaded' });
      expect((await refusedPage(late.page)).state).toBe('failed');
    } finally {
      await late.context.close();
    }
    await waitFor('the agent to log the expiry', () => /console refused.*expired/.test(world.agent.output()));
  }, patience(90_000));

  it.skipIf(!uiAvailable)('opens from the CloudStack UI\'s console button on the VM\'s page', async () => {
    const ui = await openUiPage(browser.browser);
    try {
      const { page } = ui;
      const base = runtime.apiUrl.replace(/\/client\/api$/, '');
      await logIn(page, base, runtime.credentials.username, runtime.credentials.password);
      await page.goto(`${base}/client/#/vm/${vm.id}`, { waitUntil: 'domcontentloaded' });
      const button = await uncoveredConsoleButton(page);
      await page.screenshot({ path: join(ARTIFACTS, 'console-vm-page.png') });
      const popup = await consoleOpenedBy(ui, button);
      // CSP keeps the page to its own origin; the popup's requests are checked all the same.
      const requested: string[] = [];
      popup.on('request', (request) => void requested.push(request.url()));
      await popup.setViewport({ width: 1024, height: 700 });
      const screen = await screenShown(popup);
      expect(screen.other).toBeGreaterThan(0);
      await popup.screenshot({ path: join(ARTIFACTS, 'console-from-ui.png') });
      expect(requested.filter((url) => !LOOPBACK.has(new URL(url).hostname))).toEqual([]);
    } finally {
      await ui.close();
    }
  }, patience(180_000));
});
