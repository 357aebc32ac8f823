// Scripted HTTP/1.1 servers on loopback that keep their connections (plain TCP, or TLS with a test
// certificate), for the direct reader's tests: every request that arrives on a connection is
// answered by `script(socket, request, n)`, n being the request's number on that connection.
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { after } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';

// Every server this file starts is closed when the test file's tests are done.
const servers: KeepAliveServer[] = [];
after(() => {
  for (const s of servers.splice(0)) s.close();
});

export interface KeepAliveServer {
  /** http://127.0.0.1:PORT/v2/a/blobs/x, or https://localhost:PORT/… with `tls`. */
  url: URL;
  /** Every request head, in arrival order. */
  requests: string[];
  /** The open connections. */
  sockets: Set<Socket>;
  connections(): number;
  server: Server;
  /** Destroys the connections and closes the server (done anyway after the file's tests). */
  close(): void;
}

export async function serveKeepAlive(
  script: (socket: Socket, request: string, n: number) => void,
  options: { tls?: { cert: string; key: string } } = {},
): Promise<KeepAliveServer> {
  const requests: string[] = [];
  let connections = 0;
  const sockets = new Set<Socket>();
  const onConnection = (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    let n = 0;
    socket.on('data', (d: Buffer) => {
      buffered += d.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const request = buffered.slice(0, end + 4);
        buffered = buffered.slice(end + 4);
        requests.push(request);
        script(socket, request, n++);
      }
    });
  };
  const server: Server = options.tls
    ? createTlsServer(options.tls, onConnection)
    : createServer(onConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const url = new URL(
    options.tls ? `https://localhost:${port}/v2/a/blobs/x` : `http://127.0.0.1:${port}/v2/a/blobs/x`,
  );
  const running: KeepAliveServer = {
    url,
    requests,
    sockets,
    connections: () => connections,
    server,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
  servers.push(running);
  return running;
}
