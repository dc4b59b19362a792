import { describe, expect, it } from 'vitest';
import { clientAddressOf, clientKeyOf, normalizeAddress } from '../../shared/client-address.ts';

const XFF_LAST = { header: 'x-forwarded-for', hop: 1 };

function requestWith(headers: Record<string, string>): Request {
  return new Request('http://functions.local/register', { method: 'POST', headers });
}

describe('normalizeAddress', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    [' 192.0.2.1 ', '192.0.2.1'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:DB8:0:0:ffff::9', '2001:db8:0:0::/64'],
    ['[2001:db8:1:2::1]', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::1', '0:0:0:0::/64'],
  ])('keys %s as %s (IPv6 by its /64, IPv4-mapped as IPv4)', (address, key) => {
    expect(normalizeAddress(address)).toBe(key);
  });

  it.each([
    '256.0.0.1',
    '192.0.2',
    '1::2::3',
    '2001:db8:1:2:3:4:5:6:7',
    'unknown',
    'client-1',
    '',
    '192.0.2.1:443',
  ])(
    'refuses %j, which is no IP address',
    (text) => {
      expect(normalizeAddress(text)).toBeNull();
    },
  );
});

describe('clientAddressOf and clientKeyOf', () => {
  it('take the configured hop counted from the right, so entries a client wrote in front do not count', () => {
    const request = requestWith({ 'x-forwarded-for': '198.51.100.1, 203.0.113.9, 192.0.2.7' });
    expect(clientAddressOf(request, XFF_LAST)).toBe('192.0.2.7');
    expect(clientAddressOf(request, { header: 'x-forwarded-for', hop: 2 })).toBe('203.0.113.9');
    expect(clientAddressOf(request, { header: 'x-forwarded-for', hop: 4 })).toBeNull();
  });

  it('read a single-valued header such as cf-connecting-ip', () => {
    const request = requestWith({
      'cf-connecting-ip': '2001:db8:aa:bb::5',
      'x-forwarded-for': '192.0.2.7',
    });
    expect(clientAddressOf(request, { header: 'cf-connecting-ip', hop: 1 })).toBe(
      '2001:db8:aa:bb::5',
    );
    expect(clientKeyOf(request, { header: 'cf-connecting-ip', hop: 1 })).toBe(
      '2001:db8:aa:bb::/64',
    );
  });

  it('name no client when the header is missing or its hop is not an address', () => {
    expect(clientKeyOf(requestWith({}), XFF_LAST)).toBeNull();
    expect(clientKeyOf(requestWith({ 'x-forwarded-for': '192.0.2.7, unknown' }), XFF_LAST))
      .toBeNull();
  });
});
