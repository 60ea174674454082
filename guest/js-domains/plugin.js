// A Vellum plugin written in JavaScript: a domain allow-list for the links agents handle.
// Every http(s) URL in an event's payload strings and subject whose host is not on the
// allow-list (exactly, or a subdomain of an entry) is replaced by a placeholder, so an audit
// log keeps where agents went inside the organisation and not the rest of the web.
//
// Configuration (JSON): {"allow": ["example.com", "docs.rs"], "replacement": "[URL]"}.
// `allow` is required (an empty list replaces every URL); `replacement` defaults to "[URL]".
// Built into a component with componentize-js against the same WIT world as the other
// plugins (`vellum plugin build`, or guest/artifacts/build.rs for this repository).

import { log } from "vellum:audit/host@0.1.0";

const KNOWN_KEYS = new Set(["allow", "replacement"]);
// Scheme, then the authority up to the first `/ ? #`, whitespace or quote.
const URL_PATTERN = /\bhttps?:\/\/[^\s\/?#"'<>]+[^\s"'<>]*/gi;

// Set by configure; a fresh instance is always configured before its first apply.
let allow = null;
let replacement = "[URL]";

// The host part of an authority (`user:pw@host:port`), lower-cased, or null.
function hostOf(url) {
  const authority = url.replace(/^https?:\/\//i, "").split(/[\/?#]/, 1)[0];
  const host = authority.slice(authority.lastIndexOf("@") + 1).replace(/:\d*$/, "");
  return host ? host.toLowerCase().replace(/\.$/, "") : null;
}

function allowed(url) {
  const host = hostOf(url);
  return host !== null && allow.some((d) => host === d || host.endsWith("." + d));
}

function scrubText(text) {
  return text.replace(URL_PATTERN, (url) => (allowed(url) ? url : replacement));
}

// Rewrites every string inside a JSON value, keeping keys and structure.
function scrub(value) {
  if (typeof value === "string") return scrubText(value);
  if (Array.isArray(value)) return value.map(scrub);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrub(v)]));
  }
  return value;
}

function fail(message) {
  // componentize-js maps a thrown value to the `err` case of `result<_, string>`.
  throw `invalid configuration: ${message}`;
}

export const filter = {
  configure(config) {
    let settings;
    try {
      settings = config.trim() ? JSON.parse(config) : {};
    } catch (e) {
      fail(`not JSON: ${e.message}`);
    }
    if (settings === null || typeof settings !== "object" || Array.isArray(settings)) {
      fail("expected a JSON object");
    }
    const unknown = Object.keys(settings).filter((k) => !KNOWN_KEYS.has(k)).sort();
    if (unknown.length > 0) fail(`unknown key \`${unknown[0]}\` (known: allow, replacement)`);
    if (!Array.isArray(settings.allow) || settings.allow.some((d) => typeof d !== "string" || !d)) {
      fail("`allow` must be a list of domain names, for example [\"example.com\"]");
    }
    if ("replacement" in settings && typeof settings.replacement !== "string") {
      fail("`replacement` must be a string");
    }
    allow = settings.allow.map((d) => d.toLowerCase().replace(/^\./, "").replace(/\.$/, ""));
    replacement = settings.replacement ?? "[URL]";
    log("debug", `allowing links to ${allow.length} domain(s)`);
  },

  apply(events) {
    return events.map((event) => {
      if (allow === null) return { tag: "reject", val: "plugin used before configure" };
      let payload;
      try {
        payload = JSON.parse(event.payload);
      } catch (e) {
        return { tag: "reject", val: `payload is not JSON: ${e.message}` };
      }
      const scrubbed = JSON.stringify(scrub(payload));
      const subject = event.subject === undefined ? undefined : scrubText(event.subject);
      if (scrubbed === JSON.stringify(payload) && subject === event.subject) {
        return { tag: "pass" };
      }
      return { tag: "keep", val: { ...event, payload: scrubbed, subject } };
    });
  },
};
