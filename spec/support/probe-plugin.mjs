// A stand-in network plugin for the test bed's self-test: proves an engine discovers a socket at Host.socketPath.
// Usage: node probe-plugin.mjs SOCKET. Answers enough of the protocol for `docker network create/rm`.
import { createServer } from 'node:http';
import { rmSync } from 'node:fs';

const socket = process.argv[2];
const replies = {
  '/Plugin.Activate': { Implements: ['NetworkDriver'] },
  '/NetworkDriver.GetCapabilities': { Scope: 'local', ConnectivityScope: 'local' },
  '/NetworkDriver.CreateNetwork': {},
  '/NetworkDriver.DeleteNetwork': {},
};

rmSync(socket, { force: true });
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const reply = replies[req.url];
    console.log(`${req.url} ${reply ? 200 : 404}`);
    res.writeHead(reply ? 200 : 404, { 'Content-Type': 'application/vnd.docker.plugins.v1+json' });
    res.end(JSON.stringify(reply ?? { Err: `not implemented: ${req.url}` }));
  });
});
server.listen(socket, () => console.log(`listening on ${socket}`));
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    rmSync(socket, { force: true });
    process.exit(0);
  });
}
