/** A place in a file, as an editor shows it: 1-based line, and column counted in characters. */
export interface FilePosition {
  line: number;
  column: number;
}

/**
 * Line and column of UTF-16 offsets in one text, asked in increasing order (each call goes on
 * from the last, so a text costs one pass in all), starting from a known place: a piece of a
 * file knows only where the file's previous pieces left off. Columns count characters, as
 * PostgreSQL's positions and an editor's columns do, not UTF-16 units (an emoji is one column).
 *
 * @example
 *   new LineCursor("SELECT 1;\nSELEC 2").at(10); // { line: 2, column: 1 }
 */
export class LineCursor {
  private readonly text: string;
  private offset = 0;
  private line: number;
  private column: number;
  private readonly from: FilePosition;

  constructor(text: string, from: FilePosition = { line: 1, column: 1 }) {
    this.text = text;
    this.from = from;
    this.line = from.line;
    this.column = from.column;
  }

  at(offset: number): FilePosition {
    if (offset < this.offset) {
      this.offset = 0;
      this.line = this.from.line;
      this.column = this.from.column;
    }
    const to = Math.min(offset, this.text.length);
    for (let i = this.text.indexOf("\n", this.offset); i !== -1 && i < to; i = this.text.indexOf("\n", i + 1)) {
      this.line++;
      this.column = 1;
      this.offset = i + 1;
    }
    this.column += characters(this.text, this.offset, to);
    this.offset = to;
    return { line: this.line, column: this.column };
  }
}

/**
 * Where each of a file's pieces (the text between drizzle-kit's breakpoints) starts: its UTF-16
 * offset, line and column, from one pass that reads each piece once and keeps none of them. A
 * position inside a piece is then counted in that piece alone, so placing an error in a 50 MB
 * file never holds the file's text. Built only when an error or lint needs a position.
 *
 * @example
 *   const index = new PieceIndex(["SELECT 1;\n", "SELEC 2"], "--> statement-breakpoint");
 *   index.at(index.offsets[1] as number); // { line: 2, column: 25 }
 */
export class PieceIndex {
  /** UTF-16 offset of each piece in the pieces joined by the separator. */
  readonly offsets: Float64Array;
  private readonly pieces: readonly string[];
  private readonly separator: string;
  private readonly lines: Float64Array;
  private readonly columns: Float64Array;

  constructor(pieces: readonly string[], separator: string) {
    this.pieces = pieces;
    this.separator = separator;
    this.offsets = new Float64Array(pieces.length);
    this.lines = new Float64Array(pieces.length);
    this.columns = new Float64Array(pieces.length);
    let offset = 0;
    let at: FilePosition = { line: 1, column: 1 };
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] as string;
      this.offsets[i] = offset;
      this.lines[i] = at.line;
      this.columns[i] = at.column;
      // The separator holds no line break: it only moves the column on.
      const end = new LineCursor(piece, at).at(piece.length);
      at = { line: end.line, column: end.column + characters(separator, 0, separator.length) };
      offset += piece.length + separator.length;
    }
  }

  /** The piece holding a UTF-16 offset (or the breakpoint after it). */
  pieceAt(offset: number): number {
    let low = 0;
    let high = this.offsets.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if ((this.offsets[mid] as number) <= offset) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  /** Where a piece starts in the file. */
  start(piece: number): FilePosition {
    return { line: this.lines[piece] ?? 1, column: this.columns[piece] ?? 1 };
  }

  /** Line and column of a UTF-16 offset in the pieces joined by the separator. */
  at(offset: number): FilePosition {
    const piece = this.pieceAt(offset);
    const within = offset - (this.offsets[piece] ?? 0);
    const text = this.pieces[piece] ?? "";
    return new LineCursor(within > text.length ? text + this.separator : text, this.start(piece)).at(within);
  }

  /** The text of the piece holding `offset`, from `offset` on: what a query sent from there holds. */
  textFrom(offset: number): string {
    const piece = this.pieceAt(offset);
    return (this.pieces[piece] ?? "").slice(offset - (this.offsets[piece] ?? 0));
  }
}

/** Characters (code points) in `text` between two UTF-16 offsets, without copying it. */
function characters(text: string, from: number, to: number): number {
  let count = 0;
  for (let i = from; i < to; i++) {
    const unit = text.charCodeAt(i);
    // A low surrogate is the second half of a character already counted.
    if (unit < 0xdc00 || unit > 0xdfff) count++;
  }
  return count;
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
