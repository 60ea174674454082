// {{name}}: a Vellum plugin that replaces every match of one pattern (by default employee
// ids such as `EMP-123456`) in an event's payload strings and subject.
//
// Configuration (JSON, optional): {"pattern": "<regex>", "replacement": "[EMPLOYEE-ID]"}.
// `vellum plugin build` turns this ES module into a component with componentize-js.

import { log } from "vellum:audit/host@0.1.0";

const DEFAULT_PATTERN = "\\bEMP-\\d{6}\\b";
const DEFAULT_REPLACEMENT = "[EMPLOYEE-ID]";
const KNOWN_KEYS = new Set(["pattern", "replacement"]);

// Set by configure; the host configures every fresh instance before its first apply.
let pattern = null;
let replacement = DEFAULT_REPLACEMENT;

// Rewrites every string inside a JSON value, keeping keys and structure.
function scrub(value) {
  if (typeof value === "string") return value.replace(pattern, () => replacement);
  if (Array.isArray(value)) return value.map(scrub);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrub(v)]));
  }
  return value;
}

// componentize-js turns a thrown value into the `err` of `result<_, string>`.
function invalid(message) {
  throw `invalid configuration: ${message}`;
}

export const filter = {
  configure(config) {
    let settings;
    try {
      settings = config.trim() ? JSON.parse(config) : {};
    } catch (e) {
      invalid(`not JSON: ${e.message}`);
    }
    if (settings === null || typeof settings !== "object" || Array.isArray(settings)) {
      invalid("expected a JSON object");
    }
    const unknown = Object.keys(settings).filter((k) => !KNOWN_KEYS.has(k)).sort();
    if (unknown.length > 0) invalid(`unknown key \`${unknown[0]}\` (known: pattern, replacement)`);
    try {
      pattern = new RegExp(settings.pattern ?? DEFAULT_PATTERN, "g");
    } catch (e) {
      invalid(`\`pattern\`: ${e.message}`);
    }
    replacement = String(settings.replacement ?? DEFAULT_REPLACEMENT);
    log("debug", `replacing ${pattern.source}`);
  },

  apply(events) {
    return events.map((event) => {
      if (pattern === null) return { tag: "reject", val: "plugin used before configure" };
      let payload;
      try {
        payload = JSON.parse(event.payload);
      } catch (e) {
        // A payload that cannot be inspected must not pass unexamined.
        return { tag: "reject", val: `payload is not JSON: ${e.message}` };
      }
      const scrubbed = JSON.stringify(scrub(payload));
      const subject = event.subject === undefined ? undefined : scrub(event.subject);
      if (scrubbed === JSON.stringify(payload) && subject === event.subject) {
        // Unchanged: nothing is copied back to the host.
        return { tag: "pass" };
      }
      return { tag: "keep", val: { ...event, payload: scrubbed, subject } };
    });
  },
};
