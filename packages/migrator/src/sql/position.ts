/** A place in a file, as an editor shows it: 1-based line, and column counted in characters. */
export interface FilePosition {
  line: number;
  column: number;
}

/**
 * Line and column of UTF-16 offsets in one text. Columns count characters, as PostgreSQL's
 * positions and an editor's columns do, not UTF-16 units (an emoji is one column).
 *
 * @example
 *   new LineIndex("SELECT 1;\nSELEC 2").at(10); // { line: 2, column: 1 }
 */
export class LineIndex {
  private readonly text: string;
  private readonly starts: number[] = [0];

  constructor(text: string) {
    this.text = text;
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) this.starts.push(i + 1);
  }

  at(offset: number): FilePosition {
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if ((this.starts[mid] as number) <= offset) low = mid;
      else high = mid - 1;
    }
    const lineStart = this.starts[low] as number;
    return { line: low + 1, column: [...this.text.slice(lineStart, offset)].length + 1 };
  }
}

/**
 * Turns the UTF-8 byte offsets PostgreSQL's parser reports into UTF-16 offsets into the same
 * JavaScript string. Offsets asked in increasing order cost one pass over the text in all.
 */
export class Utf8Offsets {
  private readonly text: string;
  private readonly ascii: boolean;
  private unit = 0;
  private byte = 0;

  constructor(text: string) {
    this.text = text;
    this.ascii = Buffer.byteLength(text) === text.length;
  }

  toUtf16(byteOffset: number): number {
    if (this.ascii) return byteOffset;
    if (byteOffset < this.byte) this.unit = this.byte = 0;
    while (this.byte < byteOffset && this.unit < this.text.length) {
      const code = this.text.codePointAt(this.unit) as number;
      this.byte += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
      this.unit += code > 0xffff ? 2 : 1;
    }
    return this.unit;
  }
}
