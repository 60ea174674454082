//! The public credential formats, as data: one entry per format, a name (the key of its
//! `[detectors]` setting), a tag, and a pattern. The AI providers come first, then code
//! hosts, package registries, clouds, chat and webhooks, payment, observability and secret
//! managers. The shapes are those the issuers document (and that the gitleaks and
//! trufflehog rule lists describe); the patterns are written here.
//!
//! Adding a format is one entry here plus a case in `tests/credentials.rs`; a user adds one
//! in configuration as a `[[rules]]` entry (see `docs/plugins.md`).
//!
//! Formats with no distinctive shape (a bare 32-character key of Mistral, Cohere, Datadog,
//! Cloudflare…) are caught by the key rules instead: `MISTRAL_API_KEY=…`,
//! `"cohere_api_key": "…"`, `Authorization: Bearer …`.

use crate::detectors::{DetectorSpec, spec};

/// A credential format: on by default, and precise.
const fn key(name: &'static str, tag: &'static str, pattern: &'static str) -> DetectorSpec {
    DetectorSpec {
        precise: true,
        ..spec(name, tag, pattern)
    }
}

const fn grouped(name: &'static str, tag: &'static str, pattern: &'static str) -> DetectorSpec {
    DetectorSpec {
        group: 1,
        ..key(name, tag, pattern)
    }
}

/// Every credential format, in priority order (an earlier one wins an overlap).
pub const CREDENTIALS: &[DetectorSpec] = &[
    // AI providers.
    key(
        "openai-key",
        "OPENAI_KEY",
        r"\bsk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}|\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b|\bsk-[A-Za-z0-9]{48}\b",
    ),
    key(
        "anthropic-key",
        "ANTHROPIC_KEY",
        r"\bsk-ant-(?:api|admin|oat|ort)\d{2}-[A-Za-z0-9_-]{32,}",
    ),
    key("groq-key", "GROQ_KEY", r"\bgsk_[A-Za-z0-9]{48,56}\b"),
    key("xai-key", "XAI_KEY", r"\bxai-[A-Za-z0-9]{60,100}\b"),
    key(
        "perplexity-key",
        "PERPLEXITY_KEY",
        r"\bpplx-[A-Za-z0-9]{40,56}\b",
    ),
    key(
        "replicate-key",
        "REPLICATE_KEY",
        r"\br8_[A-Za-z0-9]{30,40}\b",
    ),
    key(
        "huggingface-token",
        "HUGGINGFACE_TOKEN",
        r"\b(?:hf_|api_org_)[A-Za-z0-9]{30,40}\b",
    ),
    key(
        "langsmith-key",
        "LANGSMITH_KEY",
        r"\blsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}\b",
    ),
    key(
        "pinecone-key",
        "PINECONE_KEY",
        r"\bpcsk_[A-Za-z0-9]{4,8}_[A-Za-z0-9]{40,}",
    ),
    key(
        "openrouter-key",
        "OPENROUTER_KEY",
        r"\bsk-or-v1-[a-f0-9]{64}\b",
    ),
    key("deepseek-key", "DEEPSEEK_KEY", r"\bsk-[a-f0-9]{32}\b"),
    key("elevenlabs-key", "ELEVENLABS_KEY", r"\bsk_[a-f0-9]{48}\b"),
    key("fireworks-key", "FIREWORKS_KEY", r"\bfw_[A-Za-z0-9]{24,}\b"),
    key(
        "tavily-key",
        "TAVILY_KEY",
        r"\btvly-(?:dev-|prod-)?[A-Za-z0-9]{32,}\b",
    ),
    // Code hosts.
    key(
        "github-token",
        "GITHUB_TOKEN",
        r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{22,}",
    ),
    key(
        "gitlab-token",
        "GITLAB_TOKEN",
        r"\bgl(?:pat|dt|rt|ptt|soat|cbt|ffct|imt|oas|agent)-[A-Za-z0-9_.-]{20,}",
    ),
    key(
        "bitbucket-token",
        "BITBUCKET_TOKEN",
        r"\bATBB[A-Za-z0-9_=.-]{32,}",
    ),
    key(
        "atlassian-token",
        "ATLASSIAN_TOKEN",
        r"\bATATT3[A-Za-z0-9_=-]{60,}",
    ),
    // Package registries.
    key("npm-token", "NPM_TOKEN", r"\bnpm_[A-Za-z0-9]{36}\b"),
    key(
        "pypi-token",
        "PYPI_TOKEN",
        r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{40,}",
    ),
    key("rubygems-key", "RUBYGEMS_KEY", r"\brubygems_[a-f0-9]{48}\b"),
    key(
        "crates-io-token",
        "CRATES_IO_TOKEN",
        r"\bcio[A-Za-z0-9]{32}\b",
    ),
    key(
        "docker-hub-token",
        "DOCKER_HUB_TOKEN",
        r"\bdckr_(?:pat|oat)_[A-Za-z0-9_-]{27,}",
    ),
    key("nuget-key", "NUGET_KEY", r"\boy2[a-z0-9]{43}\b"),
    // Clouds.
    key(
        "aws-access-key",
        "AWS_ACCESS_KEY",
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b",
    ),
    grouped(
        "azure-storage-key",
        "AZURE_STORAGE_KEY",
        r"(?i:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{40,}={0,2})",
    ),
    grouped(
        "azure-sas-signature",
        "AZURE_SAS",
        r"[?&]sig=([A-Za-z0-9%+/]{30,}(?:%3D|=){0,2})",
    ),
    key(
        "azure-client-secret",
        "AZURE_CLIENT_SECRET",
        r"\b[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}\b",
    ),
    key(
        "google-api-key",
        "GOOGLE_API_KEY",
        r"\bAIza[0-9A-Za-z_-]{35}",
    ),
    key(
        "google-oauth-secret",
        "GOOGLE_OAUTH_SECRET",
        r"\bGOCSPX-[A-Za-z0-9_-]{28}\b",
    ),
    key(
        "digitalocean-token",
        "DIGITALOCEAN_TOKEN",
        r"\bdo[opr]_v1_[a-f0-9]{64}\b",
    ),
    key(
        "alibaba-access-key",
        "ALIBABA_ACCESS_KEY",
        r"\bLTAI[A-Za-z0-9]{12,20}\b",
    ),
    key(
        "databricks-token",
        "DATABRICKS_TOKEN",
        r"\bdapi[a-f0-9]{32}(?:-\d)?\b",
    ),
    key("heroku-key", "HEROKU_KEY", r"\bHRKU-[A-Za-z0-9_-]{40,}"),
    key(
        "cloudflare-origin-key",
        "CLOUDFLARE_KEY",
        r"\bv1\.0-[a-f0-9]{24}-[a-f0-9]{140,150}\b",
    ),
    key(
        "supabase-key",
        "SUPABASE_KEY",
        r"\bsbp_[a-f0-9]{40}\b|\bsb_secret_[A-Za-z0-9_-]{30,}",
    ),
    key(
        "flyio-token",
        "FLYIO_TOKEN",
        r"\bfo1_[A-Za-z0-9_-]{43}\b|\bfm[12][ar]?_[A-Za-z0-9+/=_-]{100,}",
    ),
    key(
        "vercel-token",
        "VERCEL_TOKEN",
        r"\bvc[pikar]_[A-Za-z0-9]{40,}\b",
    ),
    // Chat and webhooks.
    key(
        "slack-token",
        "SLACK_TOKEN",
        r"\bxox[abposer]-[A-Za-z0-9-]{10,}|\bxapp-\d-[A-Za-z0-9-]{20,}|https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+",
    ),
    key(
        "discord-webhook",
        "DISCORD_WEBHOOK",
        r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]{40,}",
    ),
    key(
        "discord-bot-token",
        "DISCORD_TOKEN",
        r"\b[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}\b",
    ),
    key(
        "telegram-bot-token",
        "TELEGRAM_TOKEN",
        r"\b\d{8,10}:AA[A-Za-z0-9_-]{33}\b",
    ),
    key(
        "teams-webhook",
        "TEAMS_WEBHOOK",
        r"https://[A-Za-z0-9-]+\.webhook\.office\.com/webhookb2/[A-Za-z0-9@/_-]+",
    ),
    key("twilio-key", "TWILIO_KEY", r"\bSK[0-9a-f]{32}\b"),
    key(
        "sendgrid-key",
        "SENDGRID_KEY",
        r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b",
    ),
    key(
        "mailgun-key",
        "MAILGUN_KEY",
        r"\bkey-[a-f0-9]{32}\b|\b[a-f0-9]{32}-[a-f0-9]{8}-[a-f0-9]{8}\b",
    ),
    key(
        "mailchimp-key",
        "MAILCHIMP_KEY",
        r"\b[a-f0-9]{32}-us\d{1,2}\b",
    ),
    // Payment.
    key(
        "stripe-key",
        "STRIPE_KEY",
        r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b|\bwhsec_[A-Za-z0-9+/=]{24,}",
    ),
    key(
        "square-token",
        "SQUARE_TOKEN",
        r"\bEAAA[A-Za-z0-9_-]{56,64}\b|\bsq0(?:atp|csp)-[A-Za-z0-9_-]{22,43}\b",
    ),
    key(
        "braintree-token",
        "BRAINTREE_TOKEN",
        r"access_token\$(?:production|sandbox)\$[a-z0-9]{16}\$[a-f0-9]{32}",
    ),
    key(
        "shopify-token",
        "SHOPIFY_TOKEN",
        r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",
    ),
    key(
        "flutterwave-key",
        "FLUTTERWAVE_KEY",
        r"\bFLWSECK(?:_TEST)?-[a-f0-9]{32}-X\b",
    ),
    // Observability.
    key(
        "newrelic-key",
        "NEWRELIC_KEY",
        r"\bNRAK-[A-Z0-9]{27}\b|\bNRII-[A-Za-z0-9_-]{32}\b|\bNRJS-[a-f0-9]{19}\b|\b[a-f0-9]{36}NRAL\b",
    ),
    key(
        "grafana-token",
        "GRAFANA_TOKEN",
        r"\bglsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\b|\bglc_[A-Za-z0-9+/]{32,}={0,2}",
    ),
    key(
        "sentry-token",
        "SENTRY_TOKEN",
        r"\bsntry[su]_[A-Za-z0-9+/=_-]{40,}",
    ),
    key("posthog-key", "POSTHOG_KEY", r"\bphx_[A-Za-z0-9]{40,}\b"),
    key(
        "dynatrace-token",
        "DYNATRACE_TOKEN",
        r"\bdt0[a-z]\d{2}\.[A-Z0-9]{24}\.[A-Z0-9]{64}\b",
    ),
    // Secret managers and keys.
    key(
        "vault-token",
        "VAULT_TOKEN",
        r"\bhv[sbr]\.[A-Za-z0-9_-]{24,}",
    ),
    key(
        "terraform-token",
        "TERRAFORM_TOKEN",
        r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,}",
    ),
    key(
        "doppler-token",
        "DOPPLER_TOKEN",
        r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9_-]{40,}",
    ),
    key(
        "onepassword-token",
        "ONEPASSWORD_TOKEN",
        r"\bops_eyJ[A-Za-z0-9+/=_-]{100,}",
    ),
    key(
        "age-secret-key",
        "AGE_SECRET_KEY",
        r"\bAGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}\b",
    ),
    // Productivity and API platforms.
    key(
        "linear-key",
        "LINEAR_KEY",
        r"\blin_(?:api|oauth)_[A-Za-z0-9]{40,64}\b",
    ),
    key(
        "notion-token",
        "NOTION_TOKEN",
        r"\bsecret_[A-Za-z0-9]{43}\b|\bntn_\d{11}[A-Za-z0-9]{32,36}\b",
    ),
    key(
        "airtable-token",
        "AIRTABLE_TOKEN",
        r"\bpat[A-Za-z0-9]{14}\.[a-f0-9]{64}\b",
    ),
    key(
        "postman-key",
        "POSTMAN_KEY",
        r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b",
    ),
    key(
        "figma-token",
        "FIGMA_TOKEN",
        r"\bfig[dou]_[A-Za-z0-9_-]{40,}",
    ),
    key(
        "asana-token",
        "ASANA_TOKEN",
        r"\b[012]/\d{16}:[a-f0-9]{32}\b",
    ),
];
