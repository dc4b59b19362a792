// How the dashboard writes its figures as text. Runs in the browser: script.ts embeds this
// factory's source, so it may use no import and no module-level value at run time.

/** The text formats; every time in UTC, so operators in different zones read the same page. */
export function dashboardFormat() {
  function pad(n: number): string {
    return n < 10 ? `0${n}` : String(n);
  }
  function count(n: unknown): string {
    return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US');
  }
  function percent(rate: unknown): string {
    return rate === null || rate === undefined ? '—' : `${(Number(rate) * 100).toFixed(2)}%`;
  }
  function utc(iso: string | null | undefined): string {
    if (!iso) return '—';
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
  }
  function shortTime(ms: number, withDate: boolean): string {
    const d = new Date(ms);
    const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    return withDate ? `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${hm}` : hm;
  }
  function age(seconds: unknown): string {
    if (seconds === null || seconds === undefined) return '—';
    const s = Math.floor(Number(seconds));
    const d = Math.floor(s / 86400),
      h = Math.floor((s % 86400) / 3600),
      m = Math.floor((s % 3600) / 60),
      r = s % 60;
    if (d > 0) return `${d}d ${pad(h)}h ${pad(m)}m`;
    if (h > 0) return `${h}h ${pad(m)}m ${pad(r)}s`;
    if (m > 0) return `${m}m ${pad(r)}s`;
    return `${r}s`;
  }
  function plain(value: unknown): string {
    if (value === null || value === undefined) return '—';
    if (typeof value === 'object') return JSON.stringify(value);
    return String(value);
  }
  function words(name: unknown): string {
    return String(name).replace(/_/g, ' ');
  }
  /** A check's or an alert's value or threshold, in the unit its name implies. */
  function measure(name: string, value: unknown): string {
    if (value === undefined) return '';
    if (name === 'success_rate') return value === null ? 'no attempts' : percent(value);
    if (name === 'repair_queue_age') return value === null ? 'empty' : age(value);
    return plain(value);
  }
  return { count, percent, utc, shortTime, age, plain, words, measure };
}

export type DashboardFormat = ReturnType<typeof dashboardFormat>;
