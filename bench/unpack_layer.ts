/**
 * Unpacks one gzip layer with Floka's unpackLayer, for the unpack benchmark, which times this
 * whole process (Deno start-up and module load included) as it times `tar -xzf`.
 *
 *   deno run --allow-all bench/unpack_layer.ts BLOB TARGET
 */
import { unpackLayer } from "../src/images/unpack.ts";

const [blob, target] = Deno.args;
using file = await Deno.open(blob);
await unpackLayer(file.readable, "gzip", target);
