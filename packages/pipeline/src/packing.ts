import { PackedFormatError } from './errors.js';

// The one container both codecs write: 4 magic bytes naming the kind, the header's length (u32, little
// endian), the header as UTF-8 JSON, zero padding to 4 bytes, then the payload. A hand-written frame rather
// than a serialisation library: the payload is one or two raw typed arrays that must not be copied into
// a JSON or msgpack value, and the whole format is these dozen lines.

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** `magic` (4 ASCII bytes), then `header` as JSON, then `payload`, in one buffer. */
export function frame(magic: string, header: unknown, payload: readonly Uint8Array[]): Uint8Array {
  const json = textEncoder.encode(JSON.stringify(header));
  const start = align4(8 + json.length);
  const size = payload.reduce((sum, part) => sum + part.length, start);
  const bytes = new Uint8Array(size);
  bytes.set(textEncoder.encode(magic), 0);
  new DataView(bytes.buffer).setUint32(4, json.length, true);
  bytes.set(json, 8);
  let offset = start;
  for (const part of payload) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}

/** The header and payload of a {@link frame}, checking its magic bytes. */
export function unframe(
  bytes: Uint8Array,
  magic: string,
  kind: PackedFormatError['kind'],
): { header: unknown; payload: Uint8Array } {
  if (bytes.length < 8 || textDecoder.decode(bytes.subarray(0, 4)) !== magic) {
    throw new PackedFormatError(kind, `they do not start with '${magic}'`);
  }
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  if (8 + length > bytes.length) {
    throw new PackedFormatError(
      kind,
      `the header claims ${length} bytes, more than the ${bytes.length - 8} left`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(textDecoder.decode(bytes.subarray(8, 8 + length)));
  } catch {
    throw new PackedFormatError(kind, 'the header is not JSON');
  }
  return { header, payload: bytes.subarray(align4(8 + length)) };
}

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}
