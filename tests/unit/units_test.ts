import assert from "node:assert/strict";
import { FlokaError } from "../../lib/errors.ts";
import { humanDuration, humanSize, parseBytes } from "../../lib/units.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

Deno.test("parseBytes: Docker's RAMInBytes forms (units are powers of 1024)", () => {
  assert.equal(parseBytes("1024"), 1024);
  assert.equal(parseBytes("0"), 0);
  assert.equal(parseBytes("100b"), 100);
  assert.equal(parseBytes("64k"), 64 * 1024);
  assert.equal(parseBytes("64kb"), 64 * 1024);
  assert.equal(parseBytes("512m"), 512 * 1024 * 1024);
  assert.equal(parseBytes("512M"), 512 * 1024 * 1024);
  assert.equal(parseBytes("10MB"), 10 * 1024 * 1024);
  assert.equal(parseBytes("1g"), 1024 ** 3);
  assert.equal(parseBytes("1.5g"), 1.5 * 1024 ** 3);
  assert.equal(parseBytes("2t"), 2 * 1024 ** 4);
  assert.equal(parseBytes(" 256m "), 256 * 1024 * 1024);
  assert.equal(parseBytes("1 g"), 1024 ** 3);
});

Deno.test("parseBytes: a fractional result is rounded down to whole bytes", () => {
  assert.equal(parseBytes("1.5"), 1);
  assert.equal(parseBytes("0.5k"), 512);
});

Deno.test("parseBytes: invalid sizes are a FlokaError that quotes the input", () => {
  for (const bad of ["", "abc", "-1", "1x", "m", "1..5g", "1.g", "12 34", "0x10"]) {
    assert.throws(
      () => parseBytes(bad),
      (err) => err instanceof FlokaError && err.message.startsWith(`invalid size: ${JSON.stringify(bad)}`),
      bad,
    );
  }
});

Deno.test("humanSize: decimal units with three significant digits, as docker images shows", () => {
  assert.equal(humanSize(0), "0B");
  assert.equal(humanSize(999), "999B");
  assert.equal(humanSize(1000), "1kB");
  assert.equal(humanSize(1500), "1.5kB");
  assert.equal(humanSize(1_234_567), "1.23MB");
  assert.equal(humanSize(4_261_301), "4.26MB");
  assert.equal(humanSize(72_800_000), "72.8MB");
  assert.equal(humanSize(1_000_000_000), "1GB");
  assert.equal(humanSize(123_456_789_012), "123GB");
  assert.equal(humanSize(2.5e12), "2.5TB");
});

Deno.test("humanDuration: Docker's wording for whole seconds, minutes and hours", () => {
  assert.equal(humanDuration(0), "Less than a second");
  assert.equal(humanDuration(1 * SECOND), "1 second");
  assert.equal(humanDuration(3 * SECOND), "3 seconds");
  assert.equal(humanDuration(59 * SECOND), "59 seconds");
  assert.equal(humanDuration(60 * SECOND), "About a minute");
  assert.equal(humanDuration(2 * MINUTE), "2 minutes");
  assert.equal(humanDuration(45 * MINUTE), "45 minutes");
  assert.equal(humanDuration(59 * MINUTE), "59 minutes");
  assert.equal(humanDuration(60 * MINUTE), "About an hour");
  assert.equal(humanDuration(89 * MINUTE), "About an hour");
  assert.equal(humanDuration(90 * MINUTE), "2 hours"); // Docker rounds hours
  assert.equal(humanDuration(5 * HOUR), "5 hours");
  assert.equal(humanDuration(47 * HOUR), "47 hours");
});

Deno.test("humanDuration: days, weeks, months and years as Docker counts them", () => {
  assert.equal(humanDuration(48 * HOUR), "2 days");
  assert.equal(humanDuration(13 * DAY), "13 days");
  assert.equal(humanDuration(14 * DAY), "2 weeks");
  assert.equal(humanDuration(59 * DAY), "8 weeks");
  assert.equal(humanDuration(60 * DAY), "2 months");
  assert.equal(humanDuration(729 * DAY), "24 months");
  assert.equal(humanDuration(730 * DAY), "2 years");
  assert.equal(humanDuration(10 * 365 * DAY), "10 years");
});

// go-units HumanDuration truncates: `seconds := int(d.Seconds())`, `minutes := int(d.Minutes())`.
// So `docker ps` says "Up Less than a second" right after a start and "Up About a minute"
// until two full minutes have passed.
Deno.test("humanDuration: under a full second is 'Less than a second' (Docker truncates seconds)", () => {
  assert.equal(humanDuration(400), "Less than a second");
  assert.equal(humanDuration(500), "Less than a second");
  assert.equal(humanDuration(999), "Less than a second");
});

Deno.test("humanDuration: partial seconds and minutes are truncated, as in Docker", () => {
  assert.equal(humanDuration(1999), "1 second");
  assert.equal(humanDuration(59 * SECOND + 600), "59 seconds");
  assert.equal(humanDuration(90 * SECOND), "About a minute");
  assert.equal(humanDuration(119 * SECOND), "About a minute");
  assert.equal(humanDuration(59 * MINUTE + 40 * SECOND), "59 minutes");
});
