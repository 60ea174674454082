//! Policy rules: parsing (with errors that give the rule and the path inside it) and
//! evaluation over an event's fields.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

/// What a rule (or the default) decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Pass the event on unchanged.
    Keep,
    /// Store only a drop marker.
    Drop,
    /// Refuse the event.
    Reject,
}

/// A condition over an event.
#[derive(Debug)]
pub enum Predicate {
    /// The field is present and not null (or absent, with `false`).
    Exists(Field, bool),
    /// The field equals the value.
    Equals(Field, Value),
    /// The field equals one of the values.
    In(Field, Vec<Value>),
    /// The field is a string matching the regular expression.
    Matches(Field, Regex),
    /// The field is a number and compares so with the bound.
    Compare(Field, Comparison, f64),
    /// Every predicate holds.
    All(Vec<Predicate>),
    /// At least one predicate holds.
    Any(Vec<Predicate>),
    /// The predicate does not hold.
    Not(Box<Predicate>),
}

/// A numeric comparison.
#[derive(Debug, Clone, Copy)]
pub enum Comparison {
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

/// A field of the event: an envelope field, a label, or a path into the payload.
#[derive(Debug, Clone)]
pub enum Field {
    /// `id`, `tenant`, `correlation_id`, `chain_id`, `actor`, `kind`, `subject`.
    Envelope(&'static str),
    /// `labels.<key>`.
    Label(String),
    /// `payload` or `payload.a.b.0` (dots separate object keys and array indexes).
    Payload(Vec<String>),
}

const ENVELOPE: &[&str] = &[
    "id",
    "tenant",
    "correlation_id",
    "chain_id",
    "actor",
    "kind",
    "subject",
];

/// One rule.
#[derive(Debug)]
pub struct Rule {
    /// Its name (in reasons and errors).
    pub name: String,
    /// Tenants it applies to; empty means all.
    pub tenants: Vec<String>,
    /// The condition.
    pub when: Predicate,
    /// What happens when it matches.
    pub action: Action,
    /// The reason given for drop and reject.
    pub reason: String,
}

/// A parsed policy.
#[derive(Debug)]
pub struct Policy {
    /// Rules, first match wins.
    pub rules: Vec<Rule>,
    /// Required fields per action kind.
    pub required: BTreeMap<String, Vec<Field>>,
    /// What happens when no rule matches.
    pub default: Action,
}

/// The view of an event that rules read.
pub struct EventView<'a> {
    /// Envelope field values by name.
    pub envelope: BTreeMap<&'static str, Option<&'a str>>,
    /// Labels.
    pub labels: BTreeMap<&'a str, &'a str>,
    /// The parsed payload.
    pub payload: &'a Value,
}

type Located<T> = Result<T, String>;

impl Policy {
    /// Parses policy TOML. Errors give the place: the TOML line for syntax, the rule and the
    /// path inside it for meaning.
    pub fn parse(text: &str) -> Located<Self> {
        let root: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| format!("invalid policy TOML: {e}"))?;
        for key in root.keys() {
            if !["default", "required", "rule"].contains(&key.as_str()) {
                return Err(format!(
                    "unknown top-level key `{key}` (expected default, required, rule)"
                ));
            }
        }
        let default = match root.get("default") {
            None => Action::Keep,
            Some(v) => action(v, "default")?,
        };
        let mut required = BTreeMap::new();
        if let Some(table) = root.get("required") {
            let table = table
                .as_table()
                .ok_or("`required` must be a table of kind = [fields]")?;
            for (kind, fields) in table {
                let at = format!("required.\"{kind}\"");
                let list = fields
                    .as_array()
                    .ok_or_else(|| format!("{at}: expected a list of field names"))?;
                let fields = list
                    .iter()
                    .enumerate()
                    .map(|(i, f)| field(f, &format!("{at}[{i}]")))
                    .collect::<Located<Vec<_>>>()?;
                required.insert(kind.clone(), fields);
            }
        }
        let mut rules = Vec::new();
        if let Some(list) = root.get("rule") {
            let list = list
                .as_array()
                .ok_or("`rule` must be an array of tables ([[rule]])")?;
            for (i, rule) in list.iter().enumerate() {
                rules.push(parse_rule(rule, i)?);
            }
        }
        Ok(Self {
            rules,
            required,
            default,
        })
    }

    /// Decides about one event: required fields, then the first matching rule, then the
    /// default. Returns the action and, for drop and reject, the reason.
    pub fn decide(&self, kind: &str, event: &EventView<'_>) -> (Action, String) {
        if let Some(fields) = self.required.get(kind) {
            for f in fields {
                if lookup(f, event).is_none_or(|v| v.is_null()) {
                    return (
                        Action::Reject,
                        format!("`{kind}` events require `{}`", describe(f)),
                    );
                }
            }
        }
        let tenant = event.envelope.get("tenant").copied().flatten();
        for rule in &self.rules {
            let applies = rule.tenants.is_empty()
                || tenant.is_some_and(|t| rule.tenants.iter().any(|r| r == t));
            if applies && eval(&rule.when, event) {
                return (
                    rule.action,
                    format!("rule `{}`: {}", rule.name, rule.reason),
                );
            }
        }
        (self.default, "no rule matched (default)".to_string())
    }
}

fn parse_rule(value: &toml::Value, index: usize) -> Located<Rule> {
    let table = value
        .as_table()
        .ok_or_else(|| format!("rule[{index}]: expected a table"))?;
    let name = table
        .get("name")
        .and_then(toml::Value::as_str)
        .ok_or_else(|| format!("rule[{index}]: missing `name`"))?
        .to_string();
    let at = format!("rule[{index}] (`{name}`)");
    for key in table.keys() {
        if !["name", "when", "action", "reason", "tenant", "tenants"].contains(&key.as_str()) {
            return Err(format!("{at}: unknown key `{key}`"));
        }
    }
    let when = predicate(
        table
            .get("when")
            .ok_or_else(|| format!("{at}: missing `when`"))?,
        &format!("{at}.when"),
    )?;
    let action = action(
        table
            .get("action")
            .ok_or_else(|| format!("{at}: missing `action`"))?,
        &format!("{at}.action"),
    )?;
    let reason = match table.get("reason") {
        None => String::new(),
        Some(v) => v
            .as_str()
            .ok_or_else(|| format!("{at}.reason: expected a string"))?
            .to_string(),
    };
    let mut tenants = Vec::new();
    if let Some(t) = table.get("tenant") {
        tenants.push(
            t.as_str()
                .ok_or_else(|| format!("{at}.tenant: expected a string"))?
                .to_string(),
        );
    }
    if let Some(list) = table.get("tenants") {
        let list = list
            .as_array()
            .ok_or_else(|| format!("{at}.tenants: expected a list of strings"))?;
        for t in list {
            tenants.push(
                t.as_str()
                    .ok_or_else(|| format!("{at}.tenants: expected strings"))?
                    .to_string(),
            );
        }
    }
    Ok(Rule {
        name,
        tenants,
        when,
        action,
        reason,
    })
}

fn action(value: &toml::Value, at: &str) -> Located<Action> {
    match value.as_str() {
        Some("keep") => Ok(Action::Keep),
        Some("drop") => Ok(Action::Drop),
        Some("reject") => Ok(Action::Reject),
        _ => Err(format!(
            "{at}: expected \"keep\", \"drop\" or \"reject\", found {value}"
        )),
    }
}

fn field(value: &toml::Value, at: &str) -> Located<Field> {
    let name = value
        .as_str()
        .ok_or_else(|| format!("{at}: a field name must be a string"))?;
    if let Some(e) = ENVELOPE.iter().find(|e| **e == name) {
        return Ok(Field::Envelope(e));
    }
    if let Some(key) = name.strip_prefix("labels.") {
        return Ok(Field::Label(key.to_string()));
    }
    if name == "payload" {
        return Ok(Field::Payload(Vec::new()));
    }
    if let Some(path) = name.strip_prefix("payload.") {
        return Ok(Field::Payload(
            path.split('.').map(str::to_string).collect(),
        ));
    }
    Err(format!(
        "{at}: unknown field `{name}` (use {}, labels.<key> or payload.<path>)",
        ENVELOPE.join(", ")
    ))
}

fn predicate(value: &toml::Value, at: &str) -> Located<Predicate> {
    let table = value.as_table().ok_or_else(|| {
        format!("{at}: expected a table such as {{ field = \"kind\", equals = \"tool.call\" }}")
    })?;
    let list = |key: &str| -> Located<Vec<Predicate>> {
        let items = table[key]
            .as_array()
            .ok_or_else(|| format!("{at}.{key}: expected a list of conditions"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, p)| predicate(p, &format!("{at}.{key}[{i}]")))
            .collect()
    };
    if table.len() == 1 {
        if table.contains_key("all") {
            return Ok(Predicate::All(list("all")?));
        }
        if table.contains_key("any") {
            return Ok(Predicate::Any(list("any")?));
        }
        if let Some(inner) = table.get("not") {
            return Ok(Predicate::Not(Box::new(predicate(
                inner,
                &format!("{at}.not"),
            )?)));
        }
    }
    let f = field(
        table
            .get("field")
            .ok_or_else(|| format!("{at}: missing `field` (or use all / any / not)"))?,
        &format!("{at}.field"),
    )?;
    let ops: Vec<&String> = table.keys().filter(|k| k.as_str() != "field").collect();
    let [op] = ops.as_slice() else {
        return Err(format!(
            "{at}: give exactly one test (exists, equals, in, matches, gt, gte, lt, lte), found {}",
            ops.len()
        ));
    };
    let v = &table[op.as_str()];
    let json = |v: &toml::Value| serde_json::to_value(v).map_err(|e| format!("{at}.{op}: {e}"));
    let number = |v: &toml::Value| match v {
        toml::Value::Integer(i) => Ok(*i as f64),
        toml::Value::Float(x) => Ok(*x),
        _ => Err(format!("{at}.{op}: expected a number")),
    };
    Ok(match op.as_str() {
        "exists" => Predicate::Exists(
            f,
            v.as_bool()
                .ok_or_else(|| format!("{at}.exists: expected true or false"))?,
        ),
        "equals" => Predicate::Equals(f, json(v)?),
        "in" => Predicate::In(
            f,
            v.as_array()
                .ok_or_else(|| format!("{at}.in: expected a list"))?
                .iter()
                .map(json)
                .collect::<Located<_>>()?,
        ),
        "matches" => {
            let pattern = v
                .as_str()
                .ok_or_else(|| format!("{at}.matches: expected a string"))?;
            Predicate::Matches(
                f,
                Regex::new(pattern).map_err(|e| format!("{at}.matches: invalid regex: {e}"))?,
            )
        }
        "gt" => Predicate::Compare(f, Comparison::Gt, number(v)?),
        "gte" => Predicate::Compare(f, Comparison::Gte, number(v)?),
        "lt" => Predicate::Compare(f, Comparison::Lt, number(v)?),
        "lte" => Predicate::Compare(f, Comparison::Lte, number(v)?),
        other => {
            return Err(format!(
                "{at}: unknown test `{other}` (exists, equals, in, matches, gt, gte, lt, lte)"
            ));
        }
    })
}

fn describe(f: &Field) -> String {
    match f {
        Field::Envelope(name) => (*name).to_string(),
        Field::Label(key) => format!("labels.{key}"),
        Field::Payload(path) if path.is_empty() => "payload".to_string(),
        Field::Payload(path) => format!("payload.{}", path.join(".")),
    }
}

/// The value of a field, if present.
fn lookup<'a>(f: &Field, event: &'a EventView<'a>) -> Option<std::borrow::Cow<'a, Value>> {
    use std::borrow::Cow;
    match f {
        Field::Envelope(name) => event
            .envelope
            .get(name)
            .copied()
            .flatten()
            .map(|s| Cow::Owned(Value::String(s.to_string()))),
        Field::Label(key) => event
            .labels
            .get(key.as_str())
            .map(|s| Cow::Owned(Value::String((*s).to_string()))),
        Field::Payload(path) => {
            let mut v = event.payload;
            for part in path {
                v = match v {
                    Value::Object(map) => map.get(part)?,
                    Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                    _ => return None,
                };
            }
            Some(Cow::Borrowed(v))
        }
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn eval(p: &Predicate, event: &EventView<'_>) -> bool {
    match p {
        Predicate::Exists(f, want) => lookup(f, event).is_some_and(|v| !v.is_null()) == *want,
        Predicate::Equals(f, value) => lookup(f, event).is_some_and(|v| equal(&v, value)),
        Predicate::In(f, values) => {
            lookup(f, event).is_some_and(|v| values.iter().any(|x| equal(&v, x)))
        }
        Predicate::Matches(f, re) => {
            lookup(f, event).is_some_and(|v| v.as_str().is_some_and(|s| re.is_match(s)))
        }
        Predicate::Compare(f, op, bound) => {
            lookup(f, event)
                .and_then(|v| v.as_f64())
                .is_some_and(|x| match op {
                    Comparison::Gt => x > *bound,
                    Comparison::Gte => x >= *bound,
                    Comparison::Lt => x < *bound,
                    Comparison::Lte => x <= *bound,
                })
        }
        Predicate::All(ps) => ps.iter().all(|p| eval(p, event)),
        Predicate::Any(ps) => ps.iter().any(|p| eval(p, event)),
        Predicate::Not(p) => !eval(p, event),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POLICY: &str = r#"
default = "keep"

[required]
"intent.status-changed" = ["payload.reason"]

[[rule]]
name = "no-prod-deletes"
when = { all = [
  { field = "kind", equals = "tool.call" },
  { field = "payload.tool", in = ["fs.delete", "db.drop"] },
  { field = "labels.env", equals = "prod" },
] }
action = "reject"
reason = "destructive tool calls in prod need an approval"

[[rule]]
name = "drop-heartbeats"
when = { field = "kind", matches = "^heartbeat\\." }
action = "drop"
reason = "noise"

[[rule]]
name = "big-spend"
tenant = "globex"
when = { field = "payload.cost.usd", gt = 100 }
action = "reject"
reason = "over budget"

[[rule]]
name = "anonymous"
when = { not = { field = "actor", exists = true } }
action = "drop"
"#;

    fn decide(
        policy: &Policy,
        kind: &str,
        tenant: Option<&str>,
        actor: Option<&str>,
        labels: &[(&str, &str)],
        payload: Value,
    ) -> Action {
        let envelope = BTreeMap::from([("kind", Some(kind)), ("tenant", tenant), ("actor", actor)]);
        let view = EventView {
            envelope,
            labels: labels.iter().copied().collect(),
            payload: &payload,
        };
        policy.decide(kind, &view).0
    }

    #[test]
    fn first_match_wins_with_a_default() {
        let p = Policy::parse(POLICY).unwrap();
        let a = Some("agent:x");
        assert_eq!(
            decide(
                &p,
                "tool.call",
                None,
                a,
                &[("env", "prod")],
                json!({"tool": "fs.delete"})
            ),
            Action::Reject
        );
        assert_eq!(
            decide(
                &p,
                "tool.call",
                None,
                a,
                &[("env", "dev")],
                json!({"tool": "fs.delete"})
            ),
            Action::Keep
        );
        assert_eq!(
            decide(&p, "heartbeat.agent", None, a, &[], json!({})),
            Action::Drop
        );
        assert_eq!(
            decide(
                &p,
                "tool.call",
                Some("globex"),
                a,
                &[],
                json!({"cost": {"usd": 250}})
            ),
            Action::Reject
        );
        assert_eq!(
            decide(
                &p,
                "tool.call",
                Some("acme"),
                a,
                &[],
                json!({"cost": {"usd": 250}})
            ),
            Action::Keep,
            "tenant-scoped rule"
        );
        assert_eq!(
            decide(&p, "tool.call", None, None, &[], json!({})),
            Action::Drop
        );
    }

    #[test]
    fn required_fields_per_kind() {
        let p = Policy::parse(POLICY).unwrap();
        let a = Some("agent:x");
        assert_eq!(
            decide(
                &p,
                "intent.status-changed",
                None,
                a,
                &[],
                json!({"new_status": "done"})
            ),
            Action::Reject
        );
        assert_eq!(
            decide(
                &p,
                "intent.status-changed",
                None,
                a,
                &[],
                json!({"reason": "ok"})
            ),
            Action::Keep
        );
    }

    #[test]
    fn errors_give_the_location() {
        let err = |text: &str| Policy::parse(text).unwrap_err();
        assert!(err("[[rule]]\nname = \"x\"\nwhen = { field = \"kind\", matches = \"(\" }\naction = \"drop\"").contains("rule[0] (`x`).when.matches: invalid regex"));
        assert!(err("[[rule]]\nname = \"y\"\nwhen = { all = [ { field = \"kind\" } ] }\naction = \"drop\"").contains("rule[0] (`y`).when.all[0]: give exactly one test"));
        assert!(err("[[rule]]\nname = \"z\"\nwhen = { field = \"tenat\", equals = 1 }\naction = \"drop\"").contains("unknown field `tenat`"));
        assert!(err("[[rule]]\nname = \"w\"\nwhen = { field = \"kind\", equals = 1 }\naction = \"allow\"").contains("rule[0] (`w`).action"));
        assert!(err("default = \"keep\"\n[[rule]\n").contains("line 2"));
        assert!(
            err("[required]\n\"tool.call\" = [\"payload.x\", \"nope\"]")
                .contains("required.\"tool.call\"[1]")
        );
    }
}
