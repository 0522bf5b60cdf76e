// One DNS query over TCP (length-prefixed), bounded in time: the forwarding path for clients that asked over TCP.
import net from 'node:net';

/** The reply, or undefined when the server could not be reached, closed early or took longer than `timeoutMs`. */
export function queryTcp(a: { host: string; port: number; packet: Buffer; timeoutMs: number }): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: a.host, port: a.port });
    let data = Buffer.alloc(0);
    const done = (reply?: Buffer): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    const timer = setTimeout(() => done(), a.timeoutMs);
    socket.on('error', () => done());
    socket.on('close', () => done());
    socket.on('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(a.packet.length);
      socket.write(Buffer.concat([length, a.packet]));
    });
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      if (data.length >= 2 && data.length >= 2 + data.readUInt16BE(0)) done(data.subarray(2, 2 + data.readUInt16BE(0)));
    });
  });
}
