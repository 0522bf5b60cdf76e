// The TCP server: length-prefixed messages, several per connection, bounded connections, idle ones closed.
import net from 'node:net';
import { type Handler, type Reply, safely } from './handler.js';

export interface TcpLimits {
  maxConnections: number;
  maxPerSource: number;
  idleMs: number;
  /** Queries of one connection awaiting an upstream at once; past that, reading waits. */
  maxPending: number;
}

export const TCP_LIMITS: TcpLimits = { maxConnections: 256, maxPerSource: 32, idleMs: 10_000, maxPending: 16 };

function framed(reply: Buffer): Buffer {
  const out = Buffer.alloc(2 + reply.length);
  out.writeUInt16BE(reply.length, 0);
  reply.copy(out, 2);
  return out;
}

/** Serves one connection: messages are handled as they complete, replies written as they come (RFC 7766 allows any order). */
function serve(socket: net.Socket, handler: Handler, limits: TcpLimits): void {
  let buffered = Buffer.alloc(0);
  let pending = 0;
  const source = socket.remoteAddress ?? '';
  const write = (reply: Reply): void => {
    if (reply && !socket.destroyed) socket.write(framed(reply));
  };
  const settle = (reply: Reply): void => {
    pending--;
    write(reply);
    if (pending < limits.maxPending && socket.isPaused()) socket.resume();
  };
  socket.setTimeout(limits.idleMs, () => socket.destroy());
  socket.on('error', () => undefined);
  socket.on('data', (chunk) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
      const message = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
      buffered = buffered.subarray(2 + message.length);
      const reply = safely(() => handler.handle(message, source, 'tcp'));
      if (!(reply instanceof Promise)) {
        write(reply);
        continue;
      }
      pending++;
      void reply.then(settle, () => settle(undefined));
      if (pending >= limits.maxPending) socket.pause();
    }
  });
}

export interface TcpServer {
  connections(): number;
  close(): Promise<void>;
}

export function startTcp(a: { address: string; port: number; handler: Handler; limits?: TcpLimits }): Promise<TcpServer> {
  const limits = a.limits ?? TCP_LIMITS;
  const perSource = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const source = socket.remoteAddress ?? '';
    const open = perSource.get(source) ?? 0;
    if (open >= limits.maxPerSource) {
      socket.destroy();
      return;
    }
    perSource.set(source, open + 1);
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      const left = (perSource.get(source) ?? 1) - 1;
      if (left) perSource.set(source, left);
      else perSource.delete(source);
    });
    serve(socket, a.handler, limits);
  });
  server.maxConnections = limits.maxConnections;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: a.address, port: a.port, exclusive: true }, () => {
      server.off('error', reject);
      server.on('error', () => undefined);
      resolve({
        connections: () => sockets.size,
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          for (const s of sockets) s.destroy();
        }),
      });
    });
  });
}
