import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { formatDuration } from "../../src/config/duration.js";
import { configSchema } from "../../src/config/schema.js";
import { isSipwardenError } from "../../src/core/errors.js";
import { parseAmiUrl, redactAmiUrl, resolveAmiSecret, validateAmiHost } from "../../src/sources/ami-url.js";

describe("parseAmiUrl", () => {
  it("reads user, secret, host and port", () => {
    assert.deepEqual(parseAmiUrl("ami://ips:s3cret@127.0.0.1:5038"), {
      host: "127.0.0.1",
      port: 5038,
      username: "ips",
      secret: "s3cret",
      auth: "md5",
      pingInterval: 20_000,
      silenceWarning: 600_000,
    });
  });

  it("defaults the port, decodes %-escapes, accepts IPv6 and host names", () => {
    const a = parseAmiUrl("ami://ips:p%40ss%3Aw%2Frd@[::1]");
    assert.equal(a.port, 5038);
    assert.equal(a.host, "::1");
    assert.equal(a.secret, "p@ss:w/rd");
    assert.equal(parseAmiUrl("ami://ips:x@PBX1.example.net:6000/").host, "pbx1.example.net");
  });

  it("takes the query options", () => {
    const a = parseAmiUrl(
      "ami://ips@127.0.0.1?secretFile=/etc/sipwarden/ami.secret&auth=plain&name=pbx1&ping=5s&silence=1h",
    );
    assert.equal(a.secret, undefined);
    assert.equal(a.secretFile, "/etc/sipwarden/ami.secret");
    assert.equal(a.auth, "plain");
    assert.equal(a.name, "pbx1");
    assert.equal(a.pingInterval, 5000);
    assert.equal(a.silenceWarning, 3_600_000);
  });

  it("gives the same config as the YAML would (the schema's output, durations in ms)", () => {
    const a = parseAmiUrl("ami://ips:s3cret@127.0.0.1:5038?name=pbx1&ping=30s");
    const { pingInterval, silenceWarning, ...rest } = a;
    const cfg = configSchema.parse({
      sources: {
        ami: [{ ...rest, pingInterval: formatDuration(pingInterval), silenceWarning: formatDuration(silenceWarning) }],
      },
    });
    assert.deepEqual(cfg.sources.ami[0], a);
  });

  const bad: [string, RegExp][] = [
    ["http://ips:x@127.0.0.1:5038", /scheme must be ami:\/\//],
    ["ami://127.0.0.1:5038", /user name is missing/],
    ["ami://ips@127.0.0.1:5038", /secret is missing/],
    ["ami://ips:x@127.0.0.1:5038?secretFile=/s", /not both/],
    ["ami://ips:x@127.0.0.1:99999", /not a URL|out of range/],
    ["ami://ips:x@127.0.0.1:5038/manager", /path is not allowed/],
    ["ami://ips:x@127.0.0.1:5038#frag", /fragment/],
    ["ami://ips:x@127.0.0.1:5038?secret=y", /unknown parameter "secret"/],
    ["ami://ips:x@127.0.0.1:5038?auth=sha1", /auth must be md5 or plain/],
    ["ami://ips:x@127.0.0.1:5038?ping=soon", /ping must be a duration/],
    ["ami://ips:x@127.0.0.1:5038?ping=1s&ping=2s", /given twice/],
    ["ami://ips@127.0.0.1:5038?secretFile=relative/path", /absolute path/],
    ["ami://ips:x@999.1.2.3:5038", /neither an IP address nor a host name/],
    ["ami://ips:x@bad_host!:5038", /not a URL|neither an IP address nor a host name/],
    ["ami://ip%20s:x@127.0.0.1", /space, bracket or control character/],
    ["ami://ips:x%0D%0AAction%3A%20Command@127.0.0.1", /line break/],
    ["ami://ips:x%ZZ@127.0.0.1", /not a URL|malformed %-escape/],
    ["not a url", /not a URL/],
  ];
  for (const [url, why] of bad) {
    it(`refuses ${url}`, () => {
      assert.throws(
        () => parseAmiUrl(url),
        (e: unknown) => isSipwardenError(e, "USAGE") && why.test(e.message) && !e.message.includes(":x@"),
      );
    });
  }

  it("never puts the secret in an error message", () => {
    for (const url of ["ami://ips:Sup3rS3cret@127.0.0.1:5038?bogus=1", "ami://ips:Sup3rS3cret@[zz]:1"]) {
      assert.throws(
        () => parseAmiUrl(url),
        (e: unknown) => {
          const all = JSON.stringify(e, Object.getOwnPropertyNames(e as object)) + String((e as Error).cause ?? "");
          return isSipwardenError(e) && !all.includes("Sup3rS3cret");
        },
      );
    }
  });

  it("redacts the secret for display", () => {
    assert.equal(redactAmiUrl("ami://ips:s3cret@127.0.0.1:5038"), "ami://ips:***@127.0.0.1:5038");
    assert.equal(redactAmiUrl("ami://ips@127.0.0.1:5038?secretFile=/x"), "ami://ips@127.0.0.1:5038?secretFile=/x");
  });
});

describe("validateAmiHost", () => {
  it("normalises IP literals and lower-cases names", () => {
    assert.equal(validateAmiHost("[2001:DB8::1]"), "2001:db8::1");
    assert.equal(validateAmiHost("::ffff:127.0.0.1"), "127.0.0.1");
    assert.equal(validateAmiHost("Localhost"), "localhost");
    assert.throws(
      () => validateAmiHost("a b"),
      (e: unknown) => isSipwardenError(e, "CONFIG_INVALID"),
    );
    assert.throws(
      () => validateAmiHost("1.2.3.4.5"),
      (e: unknown) => isSipwardenError(e, "CONFIG_INVALID"),
    );
  });
});

describe("resolveAmiSecret", () => {
  const dir = mkdtempSync(join(tmpdir(), "sipwarden-ami-url-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("uses the inline secret, or reads the file once and drops the trailing newline", () => {
    assert.equal(resolveAmiSecret({ username: "ips", secret: "inline" }), "inline");
    const f = join(dir, "ok");
    writeFileSync(f, "s3cret\r\n");
    assert.equal(resolveAmiSecret({ username: "ips", secretFile: f }), "s3cret");
  });

  it("refuses a missing, empty or multi-line file, naming the file", () => {
    const empty = join(dir, "empty");
    writeFileSync(empty, "\n");
    const two = join(dir, "two");
    writeFileSync(two, "a\nb\n");
    const cases: [string, string][] = [
      [join(dir, "missing"), "CONFIG_READ"],
      [empty, "CONFIG_INVALID"],
      [two, "CONFIG_INVALID"],
    ];
    for (const [file, code] of cases) {
      assert.throws(
        () => resolveAmiSecret({ username: "ips", secretFile: file }),
        (e: unknown) => isSipwardenError(e, code as "CONFIG_READ") && e.file === file && /user 'ips'/.test(e.message),
      );
    }
  });
});
