// A minimal HTTP/1.1 client on one kept-alive unix-socket connection, one call at a time, for the load loops.
// dockerd's Go client costs little per call; Node's http module costs about as much as knit's whole handler,
// and on a 2-core machine the load generator would otherwise take the CPU the figure is meant to measure.
import { connect, type Socket } from 'node:net';

export interface LeanReply {
  status: number;
  body: unknown;
}

const HEADER_END = Buffer.from('\r\n\r\n');

export class LeanConnection {
  private socket?: Socket;
  private buffer: Buffer = Buffer.alloc(0);
  private waiting?: { resolve: (r: LeanReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

  constructor(private readonly path: string, private readonly timeoutMs = 10_000) {}

  call(route: string, body: object): Promise<LeanReply> {
    if (this.waiting) return Promise.reject(new Error('one call at a time per connection'));
    const payload = Buffer.from(JSON.stringify(body));
    const head = `POST ${route} HTTP/1.1\r\nHost: knit\r\nContent-Length: ${payload.length}\r\n\r\n`;
    return new Promise<LeanReply>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`${route} timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
      this.waiting = { resolve, reject, timer };
      this.open().write(Buffer.concat([Buffer.from(head), payload]));
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private open(): Socket {
    if (this.socket) return this.socket;
    const s = connect(this.path);
    s.on('data', (chunk) => this.onData(chunk));
    s.on('error', (err) => this.fail(err));
    s.on('close', () => {
      if (this.socket === s) this.socket = undefined;
      this.fail(new Error('connection closed'));
    });
    this.socket = s;
    this.buffer = Buffer.alloc(0);
    return s;
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const end = this.buffer.indexOf(HEADER_END);
    if (end < 0) return;
    const head = this.buffer.subarray(0, end).toString('latin1');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
    if (!Number.isFinite(length)) return this.fail(new Error(`reply without Content-Length: ${head.slice(0, 200)}`));
    const total = end + HEADER_END.length + length;
    if (this.buffer.length < total) return;
    const text = this.buffer.subarray(end + HEADER_END.length, total).toString('utf8');
    this.buffer = this.buffer.subarray(total);
    const status = Number(head.slice(9, 12));
    const w = this.waiting;
    this.waiting = undefined;
    if (!w) return;
    clearTimeout(w.timer);
    try {
      w.resolve({ status, body: JSON.parse(text) });
    } catch (err) {
      w.reject(err as Error);
    }
  }

  private fail(err: Error): void {
    const w = this.waiting;
    this.waiting = undefined;
    if (!w) return;
    clearTimeout(w.timer);
    this.close();
    w.reject(err);
  }
}
