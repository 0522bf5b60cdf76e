// The UDP server: one socket on exactly the resolver's address (never the wildcard).
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { type Handler, safely } from './handler.js';

/** Room for bursts while the event loop is busy; the kernel caps it at net.core.rmem_max. */
const RECV_BUFFER = 4 << 20;

function bind(socket: dgram.Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

export async function startUdp(a: { address: string; port: number; handler: Handler }): Promise<dgram.Socket> {
  const socket = isIPv6(a.address) ? dgram.createSocket({ type: 'udp6', ipv6Only: true }) : dgram.createSocket('udp4');
  await bind(socket, a.address, a.port);
  try {
    socket.setRecvBufferSize(RECV_BUFFER);
  } catch {
    // Below the kernel's limit the default buffer serves; only bursts suffer.
  }
  // A send to a client that went away reports an error here; the socket itself stays good.
  socket.on('error', () => undefined);
  const send = (reply: Buffer | undefined, to: dgram.RemoteInfo): void => {
    if (reply) socket.send(reply, to.port, to.address, () => undefined);
  };
  socket.on('message', (msg, from) => {
    const reply = safely(() => a.handler.handle(msg, from.address, 'udp'));
    if (reply instanceof Promise) void reply.then((r) => send(r, from), () => undefined);
    else send(reply, from);
  });
  return socket;
}
