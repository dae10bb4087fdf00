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

/// How a caller proves who it is.
#[derive(Clone, Copy, PartialEq)]
pub enum Access {
    /// A vendor user's HTTP Basic credentials.
    Basic,
    /// Nothing (the ticket or the container's signature inside the request is the credential).
    Public,
    /// A cloud container credential's access token (`Authorization: Bearer …`).
    Bearer,
}

enum Body {
    Json(SchemaFn),
    /// A message file as UTF-8 text.
    Text,
}

enum Answer {
    Json(SchemaFn),
    /// A file to save (an update file), as UTF-8 text.
    File,
    Empty,
}

/// What the document says of one operation.
pub struct Doc {
    summary: &'static str,
    body: Option<Body>,
    query: Option<SchemaFn>,
    answers: Vec<(u16, Answer)>,
    csv: bool,
    access: Option<Access>,
}

/// An operation's description, to be completed with its body, query and answers.
pub fn doc(summary: &'static str) -> Doc {
    Doc {
        summary,
        body: None,
        query: None,
        answers: Vec::new(),
        csv: false,
        access: None,
    }
}

impl Doc {
    /// The JSON body the operation reads.
    pub fn body<T: JsonSchema>(mut self) -> Doc {
        self.body = Some(Body::Json(reference::<T>));
        self
    }
    /// A message file (text) as the body.
    pub fn text_body(mut self) -> Doc {
        self.body = Some(Body::Text);
        self
    }
    /// The query parameters, the fields of `T` (a flat struct).
    pub fn query<T: JsonSchema>(mut self) -> Doc {
        self.query = Some(inline::<T>);
        self
    }
    /// A JSON answer with this status.
    pub fn answer<T: JsonSchema>(mut self, status: u16) -> Doc {
        self.answers.push((status, Answer::Json(reference::<T>)));
        self
    }
    /// A file to save with this status.
    pub fn file_answer(mut self, status: u16) -> Doc {
        self.answers.push((status, Answer::File));
        self
    }
    /// An answer without a body.
    pub fn empty_answer(mut self, status: u16) -> Doc {
        self.answers.push((status, Answer::Empty));
        self
    }
    /// The first answer may also come as CSV (`format=csv`).
    pub fn csv(mut self) -> Doc {
        self.csv = true;
        self
    }
    /// No credentials needed, whatever the routes around it need.
    pub fn public(mut self) -> Doc {
        self.access = Some(Access::Public);
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
    access: Access,
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
    /// Routes under `prefix` that callers reach with `access`.
    pub fn new(prefix: &'static str, access: Access) -> Routes {
        Routes {
            prefix,
            access,
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
}

/// The OpenAPI 3.1 document of these routes.
pub fn document(parts: &[Routes], title: &str, version: &str) -> Value {
    let settings = |contract| {
        SchemaSettings::draft2020_12().with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
            s.contract = contract;
        })
    };
    let mut read = SchemaGenerator::new(settings(Contract::Deserialize));
    let mut written = SchemaGenerator::new(settings(Contract::Serialize));
    let mut operations: Vec<(String, &'static str, Value)> = Vec::new();
    for routes in parts {
        for e in &routes.entries {
            let access = e.doc.access.unwrap_or(routes.access);
            let op = operation(e, access, &mut read, &mut written);
            operations.push((format!("{}{}", routes.prefix, e.path), e.method, op));
        }
    }
    written.subschema_for::<super::ErrorBody>();
    // A type read and written alike is one schema; one whose two sides differ (a field
    // with a default is optional when read), or that refers to such a type, keeps its
    // written form under its own name and its read form as `…Input`, the requests'
    // references renamed to it.
    let mut schemas: Map<String, Value> = written.take_definitions(true).into_iter().collect();
    let read_defs: Map<String, Value> = read.take_definitions(true).into_iter().collect();
    let mut renamed: Vec<String> = read_defs
        .iter()
        .filter(|(name, schema)| schemas.get(*name).is_some_and(|w| w != *schema))
        .map(|(name, _)| name.clone())
        .collect();
    loop {
        let referring: Vec<String> = read_defs
            .iter()
            .filter(|(name, schema)| {
                schemas.contains_key(*name)
                    && !renamed.contains(name)
                    && refers_to(schema, &renamed)
            })
            .map(|(name, _)| name.clone())
            .collect();
        if referring.is_empty() {
            break;
        }
        renamed.extend(referring);
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
    let mut paths = Map::new();
    for (path, method, mut op) in operations {
        for part in ["parameters", "requestBody"] {
            if let Some(v) = op.get_mut(part) {
                rename_refs(v, &renamed);
            }
        }
        let item = paths.entry(path).or_insert_with(|| json!({}));
        item[method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
            "description": "The vendor's JSON API (HTTP Basic credentials of a user whose role \
                allows it), the activation gateway (no credentials: the ticket or the \
                container's signed request is the credential) and the cloud license use API \
                (a credential's access token). Errors answer \
                {\"error\": {\"code\", \"message\"}}."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer",
                    "description": "The access token POST /cloud/v1/token gives"},
            },
        },
        "security": [{"basic": []}],
    })
}

/// One operation of the document.
fn operation(
    e: &Entry,
    access: Access,
    read: &mut SchemaGenerator,
    written: &mut SchemaGenerator,
) -> Value {
    let mut op = Map::new();
    op.insert("operationId".into(), json!(e.id));
    op.insert("summary".into(), json!(e.doc.summary));
    op.insert("tags".into(), json!([tag(e.path)]));
    let mut params: Vec<Value> = path_params(e.path);
    if let Some(query) = e.doc.query {
        params.extend(query_params(query(read).to_value()));
    }
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    let body = match &e.doc.body {
        Some(Body::Json(schema)) => Some(json!({"application/json": {
            "schema": schema(read).to_value()}})),
        Some(Body::Text) => Some(json!({"text/plain": {"schema": {"type": "string"}}})),
        None => None,
    };
    if let Some(content) = body {
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": content}),
        );
    }
    let mut responses = Map::new();
    for (i, (status, answer)) in e.doc.answers.iter().enumerate() {
        let mut response = json!({"description": status_text(*status)});
        match answer {
            Answer::Json(schema) => {
                response["content"] =
                    json!({"application/json": {"schema": schema(written).to_value()}});
                if i == 0 && e.doc.csv {
                    response["content"]["text/csv"] = json!({"schema": {"type": "string"}});
                }
            }
            Answer::File => {
                response["content"] = json!({"text/plain": {"schema": {"type": "string"}}});
            }
            Answer::Empty => {}
        }
        responses.insert(status.to_string(), response);
    }
    for status in error_statuses(access, e.doc.body.is_some()) {
        responses.insert(
            status.to_string(),
            json!({"description": status_text(status), "content": {"application/json":
                {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}),
        );
    }
    op.insert("responses".into(), Value::Object(responses));
    match access {
        Access::Basic => {}
        Access::Public => {
            op.insert("security".into(), json!([]));
        }
        Access::Bearer => {
            op.insert("security".into(), json!([{"bearer": []}]));
        }
    }
    Value::Object(op)
}

/// The statuses an operation may answer besides its own: malformed or invalid input,
/// credentials missing or not allowed, too many tries, a database busy; an unknown id, a
/// conflict with the current state; a body too large or not JSON.
fn error_statuses(access: Access, body: bool) -> Vec<u16> {
    let mut statuses = vec![400, 403, 404, 409, 429, 503];
    if access != Access::Public {
        statuses.push(401);
    }
    if access == Access::Bearer {
        statuses.push(410);
    }
    if body {
        statuses.extend([413, 415]);
    }
    statuses.sort_unstable();
    statuses
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted: queued",
        204 => "Nothing to answer",
        400 => "The request is malformed or a value is not valid (the message says which)",
        401 => "No credentials, or wrong ones",
        403 => "The user's role does not allow this, or the state refuses it",
        404 => "Something the request names does not exist",
        410 => "The seat's lease ran out: open a new one",
        409 => "Conflicts with the current state",
        413 => "The body is larger than the server accepts",
        415 => "The body is not of the type the operation reads",
        429 => "Too many tries from this address: wait (Retry-After)",
        503 => "The database is busy or unavailable: try again",
        _ => "",
    }
}

/// The first path segment names the operation's group.
fn tag(path: &str) -> &str {
    path.trim_start_matches('/').split('/').next().unwrap_or("")
}

/// `{id}`, `{seat}` and `{firm_code}` are numbers, any other parameter a string.
fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let schema = if ["id", "seat", "firm_code"].contains(&name) {
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

/// Whether `v` refers to one of the `names` schemas.
fn refers_to(v: &Value, names: &[String]) -> bool {
    match v {
        Value::Object(m) => {
            let own = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .is_some_and(|n| names.iter().any(|x| x == n));
            own || m.values().any(|v| refers_to(v, names))
        }
        Value::Array(a) => a.iter().any(|v| refers_to(v, names)),
        _ => false,
    }
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
