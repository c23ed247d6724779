// Driving the unchanged CloudStack web UI in headless Chromium (Debian's chromium, npm puppeteer-core):
// where the build and the browser are, a browser launched with a throwaway profile, pages that reach
// only loopback (the UI asks a public site for release notes on its own), keep what the UI asked and
// what failed, and hold listApis until listZones has answered (the login's race, docs/ui.md).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import puppeteer, { type Browser, type ElementHandle, type Page } from 'puppeteer-core';
import { patience, until, waitFor } from './wait.ts';

const REPO = resolve(import.meta.dirname, '../..');
export const UI_DIR = process.env.MOLD_UI_DIR || resolve(REPO, '../shared/cloudstack-ui/dist');
export const CHROMIUM = process.env.MOLD_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = resolve(process.env.MOLD_TEST_ARTIFACTS || join(REPO, '.artifacts'), 'ui');
export const uiAvailable = existsSync(join(UI_DIR, 'index.html'));
export const chromiumAvailable = existsSync(CHROMIUM);

export const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export interface LaunchedBrowser {
  browser: Browser;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<LaunchedBrowser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'mold-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** An API call the page made: its command, parameters (GET query and POST body) and answer status. */
export interface Call {
  command: string;
  params: Record<string, string>;
  status: number;
}

export interface UiPage {
  page: Page;
  /** Every API call answered, in order. */
  calls: Call[];
  /** Uncaught errors in the page. */
  uncaught: string[];
  /** Requests that got no answer: `loopback` false for those the page was refused. */
  failed: Array<{ url: string; loopback: boolean; error: string }>;
  close(): Promise<void>;
}

const commandOf = (url: URL, body?: string) => url.searchParams.get('command') ?? new URLSearchParams(body ?? '').get('command');

export async function openUiPage(browser: Browser): Promise<UiPage> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  const calls: Call[] = [];
  const uncaught: string[] = [];
  const failed: UiPage['failed'] = [];
  page.on('pageerror', (error) => void uncaught.push(String(error)));
  let zonesAnswered!: () => void;
  const zonesListed = new Promise<void>((done) => (zonesAnswered = done));
  page.on('requestfailed', (request) => {
    const url = new URL(request.url());
    failed.push({ url: request.url(), loopback: LOOPBACK.has(url.hostname), error: request.failure()?.errorText ?? 'unknown' });
  });
  page.on('response', (response) => {
    const url = new URL(response.url());
    if (!url.pathname.startsWith('/client/api')) return;
    const body = response.request().postData();
    const command = commandOf(url, body);
    if (!command) return;
    if (command === 'listZones') zonesAnswered();
    const params = Object.fromEntries([...url.searchParams.entries(), ...new URLSearchParams(body ?? '').entries()].filter(([k]) => !['command', 'response', 'sessionkey', 'password'].includes(k)));
    calls.push({ command, params, status: response.status() });
  });
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol !== 'data:' && url.protocol !== 'blob:' && !LOOPBACK.has(url.hostname)) return void request.abort('blockedbyclient');
    if (url.pathname.startsWith('/client/api') && commandOf(url, request.postData()) === 'listApis') return void zonesListed.then(() => request.continue());
    void request.continue();
  });
  return { page, calls, uncaught, failed, close: () => context.close() };
}

/** Logs in on the UI's form and waits for the menu drawn from listApis. */
export async function logIn(page: Page, base: string, username: string, password: string, domain?: string) {
  await page.goto(`${base}/client/`, { waitUntil: 'domcontentloaded', timeout: patience(60_000) });
  await page.waitForSelector('input[placeholder=Username]', { timeout: patience(60_000) });
  await page.type('input[placeholder=Username]', username);
  await page.type('input[placeholder=Password]', password);
  if (domain) await page.type('input[placeholder=Domain]', domain);
  await page.click('button[type=submit]');
  await page.waitForFunction("location.hash.startsWith('#/dashboard') || location.hash === '#/'", { timeout: patience(60_000) });
  await page.waitForFunction("[...document.querySelectorAll('.ant-menu-submenu-title, .ant-menu-item')].some((e) => /Compute/.test(e.textContent))", { timeout: patience(60_000) });
  await settle(page);
}

/** Waits until the page has had no request in flight for half a second. */
export const settle = (page: Page) => page.waitForNetworkIdle({ idleTime: 500, timeout: patience(30_000) });

export const textOf = (page: Page) => page.evaluate('document.body.innerText') as Promise<string>;

/** The first visible element matching `selector` whose text matches `text`, once there is one. */
export async function findByText(page: Page, selector: string, text: RegExp, what = `${selector} "${text.source}"`, within = 30_000): Promise<ElementHandle> {
  let found: ElementHandle | undefined;
  await waitFor(what, async () => {
    for (const handle of await page.$$(selector)) {
      const [content, visible] = await handle.evaluate((e) => [(e as unknown as { innerText: string }).innerText ?? '', (e as unknown as { offsetParent: unknown }).offsetParent !== null] as const);
      if (visible && text.test(content)) {
        found = handle;
        return true;
      }
    }
    return false;
  }, { within, every: 250 });
  return found!;
}

/** '' when nothing covers the element's centre, else what does (its tag and class). */
export const coveredBy = (handle: ElementHandle) =>
  handle.evaluate((e: any) => {
    const r = e.getBoundingClientRect();
    const top = (globalThis as any).document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
    return top && e.contains(top) ? '' : top ? `${top.tagName}.${top.className}` : 'nothing';
  });

/**
 * Clicks `handle` once it has stopped moving and nothing covers it: a click lands where the element was
 * when it was measured, so one made while a menu still slides open (the UI animates each submenu) hits
 * whatever has moved in beneath, and one under a notification hits the notification.
 */
export async function clickWhenStill(handle: ElementHandle, what: string) {
  await handle.scrollIntoView();
  let last = '';
  await until(
    `${what} to stop moving, with nothing over it`,
    async () => {
      const box = JSON.stringify(await handle.boundingBox());
      const moved = box !== last;
      last = box;
      return { moved, coveredBy: await coveredBy(handle) };
    },
    (seen) => !seen.moved && seen.coveredBy === '',
    { every: 200 },
  );
  await handle.click();
}

/** Clicks the first visible `selector` whose text matches `text`, once it has stopped moving. */
export async function clickText(page: Page, selector: string, text: RegExp, what = `${selector} "${text.source}"`) {
  await clickWhenStill(await findByText(page, selector, text, what), what);
}

/**
 * Closes the notifications that stay until closed (the UI's "Request failed" for a command a form asked
 * for and Mold lacks, docs/ui.md): they sit over the top right of the page, where the header's buttons are.
 */
export async function closeNotices(page: Page) {
  for (const close of await page.$$('.ant-notification-notice-close')) await close.click().catch(() => {});
  await page.waitForSelector('.ant-notification-notice', { hidden: true, timeout: patience(30_000) });
}

/** Clicks the visible action button with `icon` (antd's icon name, e.g. `poweroff`) in a resource page's header, once it is enabled. */
export async function clickAction(page: Page, icon: string) {
  const button = await page.waitForSelector(`.row-action-button button:has(.anticon-${icon}):not([disabled])`, { visible: true, timeout: patience(30_000) });
  await clickWhenStill(button!, `the ${icon} action`);
}

/** Waits until the open dialog has loaded what its form needs (its spinner gone, OK enabled). */
export const dialogReady = (page: Page) =>
  page.waitForFunction(
    `[...document.querySelectorAll('.ant-modal')].some((m) => m.offsetParent !== null && !m.querySelector('.ant-spin-spinning') && [...m.querySelectorAll('button.ant-btn-primary')].some((b) => b.innerText.trim() === 'OK' && !b.disabled && !b.classList.contains('ant-btn-loading')))`,
    { timeout: patience(30_000) },
  );

/** The open dialog's OK, once its form has loaded; a screenshot `shot` (in ARTIFACTS) of it first. */
export async function confirmDialog(page: Page, shot: string) {
  await dialogReady(page);
  const ok = await findByText(page, '.ant-modal button.ant-btn-primary', /^OK$/, 'the dialog\'s OK');
  await page.screenshot({ path: join(ARTIFACTS, shot) });
  await clickWhenStill(ok, 'the dialog\'s OK');
}

/**
 * Requests Chromium itself cut off, not the runtime: one the page's own navigation abandoned, and
 * those in flight when this machine's network interfaces changed (the lab tests running beside add and
 * delete links and namespaces; Chromium then fails what is in flight with ERR_NETWORK_CHANGED).
 */
const CUT_BY_CHROMIUM = new Set(['net::ERR_ABORTED', 'net::ERR_NETWORK_CHANGED']);

/**
 * The page's uncaught errors, less the rejected promises of commands answered 432 that the caller
 * tolerates (features Mold lacks, docs/ui.md) and, when the page was refused a request to a public
 * site or Chromium cut requests off, the axios 'Network Error' that causes; plus every loopback
 * request that got no answer for another reason.
 */
export function realErrors(ui: Pick<UiPage, 'uncaught' | 'failed'>): string[] {
  const explained = ui.failed.some((request) => !request.loopback || request.error === 'net::ERR_NETWORK_CHANGED');
  const unanswered = ui.failed.filter((request) => request.loopback && !CUT_BY_CHROMIUM.has(request.error)).map((request) => `${request.url}: ${request.error}`);
  return [...ui.uncaught.filter((error) => error !== 'Error: Request failed with status code 432' && !(explained && error === 'Error: Network Error')), ...unanswered];
}

/** The commands answered with `status`, each once. */
export const answered = (ui: UiPage, status: number) => [...new Set(ui.calls.filter((call) => call.status === status).map((call) => call.command))];
