/**
 * The tool's name and version, read from `deno.json` so that the version is written in one place.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/** The tool's name as recorded in metadata and printed by `--version`. */
export const TOOL_NAME = "atocore-backup";
/** The tool's version (`deno.json`'s `version`), recorded in metadata and printed by `--version`. */
export const TOOL_VERSION: string = denoJson.version;
