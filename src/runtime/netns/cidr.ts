/** IPv4 CIDR arithmetic for the pod and service CIDRs. */
import { isIPv4 } from 'node:net';
import { PalisadeError } from '../../errors/index.js';

/** A parsed IPv4 CIDR: network address as a number, prefix length, number of addresses. */
export interface Cidr {
  readonly base: number;
  readonly prefix: number;
  readonly size: number;
}

function toNumber(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

function toIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => String(Math.floor(n / 2 ** shift) % 256)).join('.');
}

/** Parses `a.b.c.d/n` (the host bits must be zero); `field` names the flag in errors. */
export function parseCidr(value: string, field: string): Cidr {
  const [address, bits, extra] = value.split('/');
  const prefix = Number(bits);
  if (
    extra !== undefined ||
    address === undefined ||
    !isIPv4(address) ||
    bits === undefined ||
    !/^\d+$/.test(bits) ||
    prefix > 32
  )
    throw new PalisadeError('PAL_ERR_USAGE', `${field}: ${value} is not an IPv4 CIDR (a.b.c.d/n)`);
  const size = 2 ** (32 - prefix);
  const base = toNumber(address);
  if (base % size !== 0)
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `${field}: ${value} has host bits set (did you mean ${toIp(base - (base % size))}/${String(prefix)}?)`,
    );
  return { base, prefix, size };
}

/** The `index`-th address of the CIDR (0 is the network address). */
export function cidrHost(cidr: Cidr, index: number): string {
  if (index < 0 || index >= cidr.size)
    throw new PalisadeError(
      'PAL_ERR_RUNTIME_ADDRESS_SPACE',
      `address ${String(index)} is outside a /${String(cidr.prefix)}`,
    );
  return toIp(cidr.base + index);
}
