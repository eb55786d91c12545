/** IP addresses as numbers, for `prefix_ranges` matching (capture-config.ts, chain-match.ts). */
import * as net from 'node:net';

/** An address as a number, with its bit width (32 or 128). */
export interface AddressBits {
  readonly value: bigint;
  readonly bits: number;
}

/** IPv4/IPv6 address → bigint, with its bit width. */
export function addressBits(address: string): AddressBits | undefined {
  if (net.isIPv4(address)) {
    const value = address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    return { value, bits: 32 };
  }
  if (!net.isIPv6(address) || address.includes('.') || address.includes('%')) return undefined;
  const [head = '', tail = ''] = address.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::')
    ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
    : h;
  return {
    value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n),
    bits: 128,
  };
}
