/**
 * Names of images in the local store: `name[:tag]`, `latest` when the tag is left out,
 * with Docker's character rules (lowercase path components, tags of word characters).
 */
import { FlokaError } from "./errors.ts";

export interface ImageName {
  name: string;
  tag: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
/** A registry host: DNS name or IPv4 address, with an optional numeric port. */
const HOST =
  /^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d+)?$/;

export function parseImageName(text: string): ImageName {
  const slash = text.lastIndexOf("/");
  const colon = text.lastIndexOf(":");
  const hasTag = colon > slash;
  const name = hasTag ? text.slice(0, colon) : text;
  const tag = hasTag ? text.slice(colon + 1) : "latest";
  const parts = name.split("/");
  const hostLike = parts.length > 1 && /[.:]|^localhost$/.test(parts[0]);
  const pathParts = hostLike ? parts.slice(1) : parts;
  const badHost = hostLike && !HOST.test(parts[0]);
  if (!name || badHost || pathParts.length === 0 || !pathParts.every((p) => COMPONENT.test(p))) {
    throw new FlokaError(
      `invalid reference format: ${JSON.stringify(text)} (repository names must be lowercase)`,
    );
  }
  if (!TAG.test(tag)) {
    throw new FlokaError(
      `invalid reference format: bad tag in ${JSON.stringify(text)}`,
    );
  }
  return { name, tag };
}

export function formatImageName(image: ImageName): string {
  return `${image.name}:${image.tag}`;
}
