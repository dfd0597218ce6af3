// start.mjs: run @vercel/cosmosdb-server (the peer server-bench compares
// with) on 127.0.0.1:<port> over HTTPS with its bundled certificate.
//
//   node bench/peer/start.mjs <port>
//
// keepAlive: true makes it answer "Connection: keep-alive" (its default is
// "Connection: close", which would measure TLS handshakes, not requests).
// Prints "ready https://127.0.0.1:<port>" once listening; SIGTERM stops it.
import cosmos from "@vercel/cosmosdb-server";

const port = Number(process.argv[2] ?? 0);
const server = cosmos.createHttpsServer({ keepAlive: true });
server.listen(port, "127.0.0.1", () => {
  console.log(`ready https://127.0.0.1:${server.address().port}`);
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
