//! The JSON API's contract as an OpenAPI 3.1 document (`GET /api/v1/openapi.json`).
//!
//! It is made from the same list the server registers its routes from ([`Routes`]) and from
//! the request and answer types' own schemas (schemars reads their serde attributes: renames,
//! defaults, skipped fields), so a route, a field or a type cannot change without the document
//! changing with it. Requests are described as the server reads them, answers as it writes
//! them (a field with a default is optional in a request and always present in an answer).
use actix_web::{web, FromRequest, Handler, Responder};
use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn reference<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

fn inline<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    T::json_schema(g)
}

/// What the document says of one operation.
pub struct Doc {
    summary: &'static str,
    body: Option<SchemaFn>,
    query: Option<SchemaFn>,
    answers: Vec<(u16, SchemaFn)>,
    csv: bool,
    public: bool,
}

/// An operation's description, to be completed with its body, query and answers.
pub fn doc(summary: &'static str) -> Doc {
    Doc {
        summary,
        body: None,
        query: None,
        answers: Vec::new(),
        csv: false,
        public: false,
    }
}

impl Doc {
    /// The JSON body the operation reads.
    pub fn body<T: JsonSchema>(mut self) -> Doc {
        self.body = Some(reference::<T>);
        self
    }
    /// The query parameters, the fields of `T` (a flat struct).
    pub fn query<T: JsonSchema>(mut self) -> Doc {
        self.query = Some(inline::<T>);
        self
    }
    /// A JSON answer with this status.
    pub fn answer<T: JsonSchema>(mut self, status: u16) -> Doc {
        self.answers.push((status, reference::<T>));
        self
    }
    /// The first answer may also come as CSV (`format=csv`).
    pub fn csv(mut self) -> Doc {
        self.csv = true;
        self
    }
    /// No credentials needed.
    pub fn public(mut self) -> Doc {
        self.public = true;
        self
    }
}

struct Entry {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    doc: Doc,
    route: Option<actix_web::Route>,
}

/// The routes of one scope, each with its description: the server registers them and the
/// document describes them from this one list.
pub struct Routes {
    prefix: &'static str,
    entries: Vec<Entry>,
}

/// `route!(routes, get "/items" list_items, doc(…))`: registers a handler under its own name.
macro_rules! route {
    ($r:expr, $method:ident $path:literal $handler:ident, $doc:expr) => {
        $r.add(
            stringify!($method),
            $path,
            stringify!($handler),
            $handler,
            $doc,
        )
    };
}
pub(crate) use route;

impl Routes {
    pub fn new(prefix: &'static str) -> Routes {
        Routes {
            prefix,
            entries: Vec::new(),
        }
    }

    pub fn add<F, Args>(
        &mut self,
        method: &'static str,
        path: &'static str,
        id: &'static str,
        handler: F,
        doc: Doc,
    ) where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = match method {
            "get" => web::get(),
            "post" => web::post(),
            "put" => web::put(),
            "patch" => web::patch(),
            "delete" => web::delete(),
            other => panic!("route {path}: no method {other}"),
        };
        self.entries.push(Entry {
            method,
            path,
            id,
            doc,
            route: Some(route.to(handler)),
        });
    }

    /// The routes, into a scope at the prefix.
    pub fn scope(&mut self) -> actix_web::Scope {
        let mut scope = web::scope(self.prefix);
        for e in &mut self.entries {
            if let Some(route) = e.route.take() {
                scope = scope.route(e.path, route);
            }
        }
        scope
    }

    /// `(method, full path)` of every route, for tests and listings.
    pub fn list(&self) -> Vec<(&'static str, String)> {
        self.entries
            .iter()
            .map(|e| (e.method, format!("{}{}", self.prefix, e.path)))
            .collect()
    }

    /// The OpenAPI 3.1 document.
    pub fn document(&self, title: &str, version: &str) -> Value {
        let settings = |contract| {
            SchemaSettings::draft2020_12().with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
                s.contract = contract;
            })
        };
        let mut read = SchemaGenerator::new(settings(Contract::Deserialize));
        let mut written = SchemaGenerator::new(settings(Contract::Serialize));
        let mut paths = Map::new();
        let mut operations: Vec<(String, &'static str, Value)> = Vec::new();
        for e in &self.entries {
            let mut op = Map::new();
            op.insert("operationId".into(), json!(e.id));
            op.insert("summary".into(), json!(e.doc.summary));
            op.insert("tags".into(), json!([tag(e.path)]));
            let mut params: Vec<Value> = path_params(e.path);
            if let Some(query) = e.doc.query {
                params.extend(query_params(query(&mut read).to_value()));
            }
            if !params.is_empty() {
                op.insert("parameters".into(), Value::Array(params));
            }
            if let Some(body) = e.doc.body {
                op.insert(
                    "requestBody".into(),
                    json!({"required": true, "content": {"application/json": {
                        "schema": body(&mut read).to_value()}}}),
                );
            }
            let mut responses = Map::new();
            for (i, (status, answer)) in e.doc.answers.iter().enumerate() {
                let mut content =
                    json!({"application/json": {"schema": answer(&mut written).to_value()}});
                if i == 0 && e.doc.csv {
                    content["text/csv"] = json!({"schema": {"type": "string"}});
                }
                responses.insert(
                    status.to_string(),
                    json!({"description": status_text(*status), "content": content}),
                );
            }
            for status in error_statuses(e) {
                responses.insert(
                    status.to_string(),
                    json!({"description": status_text(status), "content": {"application/json":
                        {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}),
                );
            }
            op.insert("responses".into(), Value::Object(responses));
            if e.doc.public {
                op.insert("security".into(), json!([]));
            }
            operations.push((
                format!("{}{}", self.prefix, e.path),
                e.method,
                Value::Object(op),
            ));
        }
        written.subschema_for::<super::ErrorBody>();
        // A type read and written alike is one schema; one whose two sides differ (a field
        // with a default is optional when read) keeps its written form under its own name
        // and its read form as `…Input`, the requests' references renamed to it.
        let mut schemas: Map<String, Value> = written.take_definitions(true).into_iter().collect();
        let read_defs: Map<String, Value> = read.take_definitions(true).into_iter().collect();
        let mut renamed: Vec<String> = Vec::new();
        for (name, schema) in &read_defs {
            if schemas.get(name).is_some_and(|w| w != schema) {
                renamed.push(name.clone());
            }
        }
        for (name, mut schema) in read_defs {
            rename_refs(&mut schema, &renamed);
            let key = if renamed.contains(&name) {
                format!("{name}Input")
            } else {
                name
            };
            schemas.insert(key, schema);
        }
        for (path, method, mut op) in operations {
            if let Some(params) = op.get_mut("parameters") {
                rename_refs(params, &renamed);
            }
            if let Some(body) = op.get_mut("requestBody") {
                rename_refs(body, &renamed);
            }
            let item = paths.entry(path).or_insert_with(|| json!({}));
            item[method] = op;
        }
        json!({
            "openapi": "3.1.0",
            "info": {"title": title, "version": version,
                "description": "The vendor's JSON API. Every operation but this document needs \
                    HTTP Basic credentials of a user whose role allows it; errors answer \
                    {\"error\": {\"code\", \"message\"}}."},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            },
            "security": [{"basic": []}],
        })
    }
}

/// The statuses an operation may answer besides its own: malformed or invalid input,
/// credentials missing or not allowed, too many tries, a database busy; an unknown id, a
/// conflict with the current state; a body too large or not JSON.
fn error_statuses(e: &Entry) -> Vec<u16> {
    let mut statuses = vec![400];
    if !e.doc.public {
        statuses.extend([401, 403, 404, 409, 429]);
    }
    if e.doc.body.is_some() {
        statuses.extend([413, 415]);
    }
    statuses.push(503);
    statuses
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted: queued",
        400 => "The request is malformed or a value is not valid (the message says which)",
        401 => "No credentials, or wrong ones",
        403 => "The user's role does not allow this, or the state refuses it",
        404 => "Something the request names does not exist",
        409 => "Conflicts with the current state",
        413 => "The body is larger than the server accepts",
        415 => "The body is not application/json",
        429 => "Too many failed logins from this address: wait (Retry-After)",
        503 => "The database is busy or unavailable: try again",
        _ => "",
    }
}

/// The first path segment names the operation's group.
fn tag(path: &str) -> &str {
    path.trim_start_matches('/').split('/').next().unwrap_or("")
}

/// `{id}` is a number (every id the API names so is one), any other parameter a string.
fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let schema = if name == "id" {
                json!({"type": "integer", "format": "int64"})
            } else {
                json!({"type": "string", "minLength": 1})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

/// A flat struct's fields as query parameters (`null` is how a missing one reads).
fn query_params(schema: Value) -> Vec<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        // A map of free names (a report's parameters): one form-exploded object.
        return vec![json!({"name": "parameters", "in": "query", "style": "form",
            "explode": true, "schema": {"type": "object",
            "additionalProperties": {"type": "string"}}})];
    };
    props
        .iter()
        .map(|(name, s)| {
            let mut s = s.clone();
            if let Some(types) = s["type"].as_array() {
                let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                s["type"] = if kept.len() == 1 {
                    kept[0].clone()
                } else {
                    Value::Array(kept)
                };
            }
            json!({"name": name, "in": "query", "required": required.contains(&name.as_str()),
                "schema": s})
        })
        .collect()
}

/// Points references to the renamed schemas at their `…Input` names.
fn rename_refs(v: &mut Value, renamed: &[String]) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref") {
                if let Some(name) = r.strip_prefix("#/components/schemas/") {
                    if renamed.iter().any(|n| n == name) {
                        *r = format!("#/components/schemas/{name}Input");
                    }
                }
            }
            m.values_mut().for_each(|v| rename_refs(v, renamed));
        }
        Value::Array(a) => a.iter_mut().for_each(|v| rename_refs(v, renamed)),
        _ => {}
    }
}
