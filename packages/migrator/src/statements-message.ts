import type pg from "pg";

/** What the server is told when a statement asks for COPY data, and repeats in its error. */
export const NO_COPY_DATA = "yomu-migrate sends no COPY data: put the rows in the migration as INSERTs";

/**
 * Several statements sent as one simple-query message, as a pg submittable. The server runs them
 * in order and answers each with a command completion, or stops at the first error; this counts
 * the completions as they arrive, so the caller knows which statement failed and when each
 * finished, as if each had been sent alone, for one round trip instead of one per statement.
 * Rows a statement returns are dropped, not kept.
 *
 * @example
 *   let completed = 0;
 *   const message = new StatementsMessage("CREATE TABLE a (id int);\nCREATE TABLE b (id int);", () => completed++);
 *   client.query(message);
 *   await message.done; // rejects with the server's error; `completed` says how many ran before it
 */
export class StatementsMessage implements pg.Submittable {
  readonly done: Promise<void>;
  /** Set by pg when the client wraps the query (its `query_timeout`); told of the outcome too. */
  callback?: (error: Error | null) => void;
  private settled = false;
  private resolve!: () => void;
  private reject!: (error: Error) => void;

  constructor(
    readonly text: string,
    private readonly onCompleted: (commandTag: string) => void,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: pg.Connection): void {
    connection.query(this.text);
  }

  handleCommandComplete(message: { text: string }): void {
    this.onCompleted(message.text);
  }

  // pg reports an error at once and the server's ReadyForQuery after it, as pg's own Query does.
  handleError(error: Error): void {
    this.settle(error);
  }

  handleReadyForQuery(): void {
    this.settle(null);
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}

  // A migration that reads COPY data from the client has none to read: the server fails the
  // statement with this text and answers ReadyForQuery as usual.
  handleCopyInResponse(connection: pg.Connection & { sendCopyFail(message: string): void }): void {
    connection.sendCopyFail(NO_COPY_DATA);
  }

  private settle(error: Error | null): void {
    if (this.settled) return;
    this.settled = true;
    this.callback?.(error);
    if (error) this.reject(error);
    else this.resolve();
  }
}
