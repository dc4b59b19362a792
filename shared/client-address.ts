// Who the client is, for per-client rate limits and for telling Supabase Auth whom a signup is
// for. Only a header that the platform in front of the function sets (and a client cannot set
// for itself) is evidence; which one that is depends on where the function runs, so it is
// configuration (CLIENT_ADDRESS_HEADER, CLIENT_ADDRESS_HOP), not a guess made here.

export interface ClientAddressSource {
  /** Lower-case header name, e.g. "x-forwarded-for" or "cf-connecting-ip". */
  header: string;
  /**
   * Which comma-separated entry, counted from the right (1 = the last): a proxy appends the
   * address it saw, so entries left of the trusted proxy's own one may be written by the client.
   */
  hop: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_CHARS = /^[0-9a-f:.]{2,45}$/;

/** The eight 16-bit groups of an IPv6 address, or null when it is not one. */
function ipv6Groups(text: string): number[] | null {
  if (!IPV6_CHARS.test(text) || !text.includes(':')) return null;
  // An embedded IPv4 address (::ffff:192.0.2.1) stands for the last two groups.
  const v4 = /:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let hex = text;
  if (v4) {
    if (!IPV4.test(v4[1]!)) return null;
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    hex = `${text.slice(0, v4.index)}:${((a << 8) | b).toString(16)}:${
      ((c << 8) | d).toString(16)
    }`;
  }
  const halves = hex.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string) => (part === '' ? [] : part.split(':'));
  const left = parse(halves[0]!);
  const right = halves.length === 2 ? parse(halves[1]!) : [];
  if ([...left, ...right].some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return null;
  const given = left.length + right.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return null;
  const zeros = halves.length === 2 ? new Array<number>(8 - given).fill(0) : [];
  return [...left, ...zeros.map(String), ...right].map((g) => parseInt(g, 16));
}

/**
 * The rate-limit identity of an address: an IPv4 address as it is, an IPv6 address as its /64
 * (one subscriber usually holds a whole /64, so keying on the full address would let a client
 * rotate through 2^64 identities), IPv4-mapped IPv6 as the IPv4 address. Null when the text is
 * no IP address at all.
 */
export function normalizeAddress(text: string): string | null {
  const candidate = text.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (IPV4.test(candidate)) return candidate;
  const groups = ipv6Groups(candidate);
  if (!groups) return null;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join('.');
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The configured header's chosen hop, exactly as sent, or null when absent or not an address. */
export function clientAddressOf(request: Request, source: ClientAddressSource): string | null {
  const hops = (request.headers.get(source.header) ?? '').split(',').map((h) => h.trim()).filter(
    Boolean,
  );
  const hop = hops.at(-source.hop);
  if (hop === undefined || normalizeAddress(hop) === null) return null;
  return hop.replace(/^\[(.*)\]$/, '$1');
}

/** The key of a client's rate-limit bucket, or null when the request names no trustworthy address. */
export function clientKeyOf(request: Request, source: ClientAddressSource): string | null {
  const address = clientAddressOf(request, source);
  return address === null ? null : normalizeAddress(address);
}
