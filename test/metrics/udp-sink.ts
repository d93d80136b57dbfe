/**
 * A StatsD receiver for tests: a real UDP socket on 127.0.0.1 (ephemeral port) that keeps every
 * datagram, and splits them into metric lines the way a StatsD server does (on `\n`).
 */
import { createSocket, type Socket } from "node:dgram";

export class UdpSink {
  readonly packets: string[] = [];
  private constructor(
    private readonly socket: Socket,
    readonly port: number,
  ) {}

  static async start(): Promise<UdpSink> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, "127.0.0.1", () => resolve());
    });
    const sink = new UdpSink(socket, socket.address().port);
    socket.on("message", (m) => sink.packets.push(m.toString("utf8")));
    return sink;
  }

  /** Every metric line received so far, in arrival order. */
  lines(): string[] {
    return this.packets.flatMap((p) => p.split("\n")).filter((l) => l.length > 0);
  }

  /** Sum of the `name:N|c` counts received for each name. */
  counts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const l of this.lines()) {
      const m = /^(.+):(\d+)\|c$/.exec(l);
      if (!m) throw new Error(`not a StatsD counter line: ${JSON.stringify(l)}`);
      out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
    }
    return out;
  }

  /** Waits (bounded) until `pred` holds for the lines received. */
  async until(what: string, pred: (lines: string[]) => boolean, timeoutMs = 10_000): Promise<string[]> {
    const end = Date.now() + timeoutMs;
    while (!pred(this.lines())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; got:\n${this.lines().join("\n")}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.lines();
  }

  clear(): void {
    this.packets.length = 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
