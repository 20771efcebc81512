/** Container IDs and names in Docker's forms. */
import { FlokaError } from "./errors.ts";

/** A 64-hex-digit random ID, as Docker's container IDs. */
export function newContainerId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const ADJECTIVES = [
  "admiring",
  "agitated",
  "amazing",
  "bold",
  "brave",
  "busy",
  "clever",
  "compassionate",
  "confident",
  "cool",
  "dazzling",
  "determined",
  "eager",
  "ecstatic",
  "elegant",
  "epic",
  "festive",
  "focused",
  "friendly",
  "gallant",
  "gifted",
  "happy",
  "hopeful",
  "jolly",
  "keen",
  "kind",
  "laughing",
  "lucid",
  "modest",
  "nifty",
  "nostalgic",
  "optimistic",
  "peaceful",
  "practical",
  "quirky",
  "relaxed",
  "serene",
  "sharp",
  "stoic",
  "sweet",
  "tender",
  "trusting",
  "vibrant",
  "vigilant",
  "wizardly",
  "youthful",
  "zealous",
  "zen",
];

const SURNAMES = [
  "agnesi",
  "babbage",
  "bardeen",
  "bell",
  "boole",
  "borg",
  "carson",
  "cerf",
  "curie",
  "darwin",
  "dijkstra",
  "einstein",
  "euclid",
  "euler",
  "fermat",
  "feynman",
  "gauss",
  "goodall",
  "hamilton",
  "hopper",
  "hypatia",
  "johnson",
  "kepler",
  "knuth",
  "lamarr",
  "lovelace",
  "maxwell",
  "meitner",
  "mirzakhani",
  "napier",
  "newton",
  "noether",
  "pascal",
  "ritchie",
  "shannon",
  "tesla",
  "thompson",
  "torvalds",
  "turing",
  "wozniak",
  "yalow",
];

/** A random `adjective_surname` name, as Docker gives unnamed containers. */
export function randomName(): string {
  const pick = (list: readonly string[]) => list[Math.floor(Math.random() * list.length)];
  return `${pick(ADJECTIVES)}_${pick(SURNAMES)}`;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Docker's container name rule; a leading `/` is accepted and dropped. */
export function validateContainerName(name: string): string {
  const bare = name.replace(/^\//, "");
  if (!NAME.test(bare)) {
    throw new FlokaError(
      `invalid container name ${JSON.stringify(name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`,
    );
  }
  return bare;
}
