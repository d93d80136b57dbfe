import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isSipwardenError } from "../../src/core/errors.js";
import { AmiFramer, type AmiMessage, encodeAction, field, serializeMessage } from "../../src/sources/ami-framing.js";
import { loadSampleStream } from "../helpers/ami-server.js";

/** Fields of each message, for comparing streams. */
const fieldsOf = (ms: readonly AmiMessage[]) => ms.map((m) => m.fields);

function collect(withBanner = false): { framer: AmiFramer; out: AmiMessage[]; banners: string[] } {
  const out: AmiMessage[] = [];
  const banners: string[] = [];
  const framer = new AmiFramer({
    onMessage: (m) => out.push(m),
    ...(withBanner && { onBanner: (b: string) => banners.push(b) }),
  });
  return { framer, out, banners };
}

function sampleBytes(): Buffer {
  const { banner, messages } = loadSampleStream();
  return Buffer.from(banner + "\r\n" + messages.join(""), "latin1");
}

describe("AmiFramer", () => {
  it("reads the banner, then every message of the recorded stream", () => {
    const { framer, out, banners } = collect(true);
    framer.push(sampleBytes());
    assert.deepEqual(banners, ["Asterisk Call Manager/9.0.0"]);
    const { messages } = loadSampleStream();
    assert.equal(out.length, messages.length);
    assert.equal(out.filter((m) => m.fields[0]![0] === "Event").length, 23);
    assert.equal(out.filter((m) => m.fields[0]![0] === "Response").length, 4);
    assert.equal(framer.midMessage, false);
  });

  it("gives the same messages with CRLF and with bare LF", () => {
    const crlf = collect(true);
    crlf.framer.push(sampleBytes());
    const lf = collect(true);
    lf.framer.push(Buffer.from(sampleBytes().toString("latin1").replaceAll("\r\n", "\n"), "latin1"));
    assert.deepEqual(fieldsOf(lf.out), fieldsOf(crlf.out));
    assert.deepEqual(
      lf.out.map((m) => m.text),
      crlf.out.map((m) => m.text),
    );
    assert.deepEqual(lf.banners, crlf.banners);
    // Mixed line ends inside one message.
    const mixed = collect();
    mixed.framer.push("Event: X\r\nA: 1\nB: 2\r\n\n");
    assert.deepEqual(fieldsOf(mixed.out), [
      [
        ["Event", "X"],
        ["A", "1"],
        ["B", "2"],
      ],
    ]);
    assert.equal(mixed.out[0]!.text, "Event: X\nA: 1\nB: 2");
  });

  it("splits on the first ': ' only, keeps repeated keys and empty values", () => {
    const { framer, out } = collect();
    framer.push(
      "Response: Success\r\nMessage: Command output follows\r\nOutput: a: b: c\r\nOutput: \r\n" +
        "Output: 2001:db8::1\r\nRequestType: Action: Command\r\nExpectedResponse: \r\nTrimmed:\r\n\r\n",
    );
    assert.equal(out.length, 1);
    assert.deepEqual(out[0]!.fields, [
      ["Response", "Success"],
      ["Message", "Command output follows"],
      ["Output", "a: b: c"],
      ["Output", ""],
      ["Output", "2001:db8::1"],
      ["RequestType", "Action: Command"],
      ["ExpectedResponse", ""],
      ["Trimmed", ""],
    ]);
    assert.equal(field(out[0]!, "Output"), "a: b: c");
    assert.equal(field(out[0]!, "Missing"), undefined);
  });

  it("keeps a line without ': ' (legacy command output) as a raw line", () => {
    const { framer, out } = collect();
    framer.push("Response: Follows\r\nPrivilege: Command\r\nsip show peers\r\n--END COMMAND--\r\n\r\n");
    assert.deepEqual(out[0]!.fields.slice(2), [
      ["", "sip show peers"],
      ["", "--END COMMAND--"],
    ]);
    assert.equal(serializeMessage(out[0]!), "Response: Follows\nPrivilege: Command\nsip show peers\n--END COMMAND--");
  });

  it("gives each message as LF-joined text, with its first key and value", () => {
    const { framer, out } = collect();
    framer.push(
      "Event: InvalidAccountID\r\nPrivilege: security,all\r\nAccountID: \r\n\r\nResponse: Success\r\nPing: Pong\r\n\r\n",
    );
    assert.equal(out[0]!.text, "Event: InvalidAccountID\nPrivilege: security,all\nAccountID: ");
    assert.equal(serializeMessage(out[0]!), out[0]!.text);
    assert.equal(out[0]!.kind, "Event");
    assert.equal(out[0]!.head, "InvalidAccountID");
    assert.equal(out[1]!.kind, "Response");
    assert.equal(out[1]!.head, "Success");
  });

  it("ignores extra blank lines between messages", () => {
    const { framer, out } = collect();
    framer.push("\r\n\r\nEvent: A\r\n\r\n\r\n\r\nEvent: B\r\n\r\n");
    assert.deepEqual(
      out.map((m) => field(m, "Event")),
      ["A", "B"],
    );
  });

  it("matches interleaved responses and events by ActionID", () => {
    const { framer, out } = collect();
    framer.push(
      "Response: Success\r\nActionID: a-1\r\nChallenge: 123\r\n\r\n" +
        "Event: ChallengeSent\r\nPrivilege: security,all\r\nSessionID: 1\r\n\r\n" +
        "Response: Success\r\nActionID: a-3\r\nPing: Pong\r\n\r\n" +
        "Event: InvalidAccountID\r\nPrivilege: security,all\r\nSessionID: 2\r\n\r\n" +
        "Response: Error\r\nActionID: a-2\r\nMessage: Authentication failed\r\n\r\n",
    );
    const byId = new Map(out.filter((m) => field(m, "ActionID")).map((m) => [field(m, "ActionID"), m]));
    assert.equal(field(byId.get("a-1")!, "Challenge"), "123");
    assert.equal(field(byId.get("a-2")!, "Message"), "Authentication failed");
    assert.equal(field(byId.get("a-3")!, "Ping"), "Pong");
    const events = out.filter((m) => m.fields[0]![0] === "Event");
    assert.deepEqual(
      events.map((m) => field(m, "ActionID")),
      [undefined, undefined],
    );
    assert.deepEqual(
      events.map((m) => field(m, "SessionID")),
      ["1", "2"],
    );
  });

  it("gives the same result when the stream arrives byte by byte, or in any cut", () => {
    const bytes = sampleBytes();
    const whole = collect(true);
    whole.framer.push(bytes);
    for (const size of [1, 2, 3, 7, 13, 64, 1000]) {
      const cut = collect(true);
      for (let i = 0; i < bytes.length; i += size) cut.framer.push(bytes.subarray(i, i + size));
      assert.deepEqual(fieldsOf(cut.out), fieldsOf(whole.out), `chunk size ${size}`);
      assert.deepEqual(
        cut.out.map((m) => m.text),
        whole.out.map((m) => m.text),
      );
      assert.deepEqual(cut.banners, whole.banners);
    }
    // A CR and its LF in different reads.
    const crlf = collect();
    crlf.framer.push("Event: A\r");
    crlf.framer.push("\nKey: v\r");
    crlf.framer.push("\n\r");
    assert.equal(crlf.out.length, 0);
    crlf.framer.push("\n");
    assert.equal(crlf.out[0]!.text, "Event: A\nKey: v");
    assert.deepEqual(crlf.out[0]!.fields, [
      ["Event", "A"],
      ["Key", "v"],
    ]);
  });

  it("reassembles a multi-byte UTF-8 character split across reads", () => {
    const { framer, out } = collect();
    const bytes = Buffer.from("Event: X\r\nAccountID: jürgen\r\n\r\n", "utf8");
    const at = bytes.indexOf(0xc3);
    framer.push(bytes.subarray(0, at + 1));
    framer.push(bytes.subarray(at + 1));
    assert.equal(field(out[0]!, "AccountID"), "jürgen");
  });

  it("parses many messages in one 1 MB chunk, with the last one cut and completed later", () => {
    const { messages } = loadSampleStream();
    const events = messages.filter((m) => m.startsWith("Event: "));
    let text = "";
    let n = 0;
    while (text.length < 1_048_576) {
      text += events[n % events.length]!;
      n++;
    }
    const tail = events[0]!;
    const chunk = text + tail.slice(0, 50);
    const { framer, out } = collect();
    framer.push(Buffer.from(chunk, "latin1"));
    assert.equal(out.length, n);
    assert.equal(framer.midMessage, true);
    framer.push(Buffer.from(tail.slice(50), "latin1"));
    assert.equal(out.length, n + 1);
    assert.equal(out[n]!.text, out[0]!.text);
    assert.equal(framer.midMessage, false);
  });

  it("stays linear on a long line delivered in small pieces", () => {
    // 512 KiB in 16-byte pieces: re-joining the line on every piece would copy ~8 GB and time out.
    const value = "x".repeat(512 * 1024);
    const text = `Event: Big\r\nOutput: ${value}\r\n\r\n`;
    const { framer, out } = collect();
    for (let i = 0; i < text.length; i += 16) framer.push(text.slice(i, i + 16));
    assert.equal(out.length, 1);
    assert.equal(field(out[0]!, "Output")!.length, value.length);
  });

  it("refuses an endless line and too many lines with AMI_PROTOCOL, and recovers after reset", () => {
    const out: AmiMessage[] = [];
    const framer = new AmiFramer({ onMessage: (m) => out.push(m), maxLineLength: 100, maxFields: 3 });
    assert.throws(
      () => framer.push("Event: " + "y".repeat(200)),
      (e: unknown) => isSipwardenError(e, "AMI_PROTOCOL"),
    );
    framer.reset();
    assert.throws(
      () => framer.push("Event: A\nB: 1\nC: 2\nD: 3\n\n"),
      (e: unknown) => isSipwardenError(e, "AMI_PROTOCOL") && /more than 3 lines/.test(e.message),
    );
    framer.reset();
    framer.push("Event: ok\n\n");
    assert.deepEqual(fieldsOf(out), [[["Event", "ok"]]]);
  });

  it("reset() drops a partial message (a connection that closed mid-event)", () => {
    const { framer, out } = collect(true);
    framer.push("Asterisk Call Manager/9.0.0\r\nEvent: InvalidAccountID\r\nPrivilege: secu");
    assert.equal(framer.midMessage, true);
    framer.reset();
    framer.push("Asterisk Call Manager/9.0.0\r\nEvent: ChallengeSent\r\n\r\n");
    assert.deepEqual(
      out.map((m) => field(m, "Event")),
      ["ChallengeSent"],
    );
  });
});

describe("encodeAction", () => {
  it("frames an action with CRLF and a blank line", () => {
    assert.equal(
      encodeAction([
        ["Action", "Ping"],
        ["ActionID", "7"],
      ]),
      "Action: Ping\r\nActionID: 7\r\n\r\n",
    );
  });
  it("refuses CR or LF inside a header (header injection)", () => {
    assert.throws(
      () =>
        encodeAction([
          ["Action", "Login"],
          ["Secret", "x\r\nAction: Command"],
        ]),
      (e: unknown) => isSipwardenError(e, "AMI_PROTOCOL"),
    );
  });
});
