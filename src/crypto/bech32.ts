/**
 * Bech32 (BIP 173, not bech32m) as age uses it for `age1…` recipients and `AGE-SECRET-KEY-1…` identities.
 * Unlike BIP 173 there is no 90-character limit; a string must be all lower or all upper case.
 *
 * @module
 */

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATORS = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let checksum = 1;
  for (const value of values) {
    const top = checksum >>> 25;
    checksum = ((checksum & 0x1ffffff) << 5) ^ value;
    for (let bit = 0; bit < 5; bit++) if ((top >>> bit) & 1) checksum ^= GENERATORS[bit];
  }
  return checksum >>> 0;
}

function expandPrefix(prefix: string): number[] {
  const codes = [...prefix].map((char) => char.charCodeAt(0));
  return [...codes.map((code) => code >>> 5), 0, ...codes.map((code) => code & 31)];
}

/** Regroup bits (8 → 5 when encoding, 5 → 8 when decoding); `null` when the padding is not canonical. */
function regroup(data: ArrayLike<number>, from: number, to: number, pad: boolean): number[] | null {
  let accumulator = 0;
  let bits = 0;
  const out: number[] = [];
  const mask = (1 << to) - 1;
  for (let index = 0; index < data.length; index++) {
    accumulator = (accumulator << from) | data[index];
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((accumulator >>> bits) & mask);
    }
    accumulator &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((accumulator << (to - bits)) & mask);
  } else if (bits >= from || accumulator !== 0) {
    return null;
  }
  return out;
}

/** Encode `bytes` under the human-readable `prefix` (lower case; callers upper-case identities). */
export function bech32Encode(prefix: string, bytes: Uint8Array): string {
  const words = regroup(bytes, 8, 5, true)!;
  const checksum = polymod([...expandPrefix(prefix), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  const check = Array.from({ length: 6 }, (_, index) => (checksum >>> (5 * (5 - index))) & 31);
  return prefix + "1" + [...words, ...check].map((word) => CHARSET[word]).join("");
}

/**
 * Decode a Bech32 string into its prefix (lower case) and bytes, or `null` when it is not valid Bech32
 * (mixed case, unknown character, bad checksum, non-canonical padding).
 */
export function bech32Decode(text: string): { prefix: string; bytes: Uint8Array } | null {
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) return null;
  const lower = text.toLowerCase();
  const separator = lower.lastIndexOf("1");
  if (separator < 1 || separator + 7 > lower.length) return null;
  const prefix = lower.slice(0, separator);
  if ([...prefix].some((char) => char.charCodeAt(0) < 33 || char.charCodeAt(0) > 126)) return null;
  const words: number[] = [];
  for (const char of lower.slice(separator + 1)) {
    const word = CHARSET.indexOf(char);
    if (word < 0) return null;
    words.push(word);
  }
  if (polymod([...expandPrefix(prefix), ...words]) !== 1) return null;
  const bytes = regroup(words.slice(0, -6), 5, 8, false);
  return bytes === null ? null : { prefix, bytes: new Uint8Array(bytes) };
}
