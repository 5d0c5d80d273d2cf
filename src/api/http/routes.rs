//! The route table: every `google.api.http` rule (and its `additional_bindings`) of every
//! method in the descriptor pool, resolved against the request/response messages once at
//! startup. Adding an RPC with a rule to the protos adds its route; there is no per-RPC code.

use http::Method;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
};

use super::template::{PathTemplate, Variable};

/// The option that carries the rules.
const HTTP_EXTENSION: &str = "google.api.http";

/// What the HTTP body becomes.
#[derive(Clone, Debug)]
pub enum BodyRule {
    /// No body: every field not bound by the path comes from the query string.
    None,
    /// `body: "*"`: the body is the request message (minus the path's fields).
    Whole,
    /// `body: "field"`: the body is that field; the rest comes from path and query.
    Field(FieldDescriptor),
}

/// A path variable resolved to the chain of fields it fills.
#[derive(Clone, Debug)]
pub struct PathBinding {
    pub variable: Variable,
    pub fields: Vec<FieldDescriptor>,
}

#[derive(Clone, Debug)]
pub struct Route {
    pub http_method: Method,
    pub template: PathTemplate,
    pub rpc: MethodDescriptor,
    /// `/package.Service/Method`, the gRPC path the call is dispatched to.
    pub grpc_path: String,
    pub body: BodyRule,
    pub response_body: Option<FieldDescriptor>,
    pub path_bindings: Vec<PathBinding>,
    /// `Service_Method`, with a number appended for additional bindings (grpc-gateway style).
    pub operation_id: String,
}

impl Route {
    pub fn input(&self) -> MessageDescriptor {
        self.rpc.input()
    }

    pub fn output(&self) -> MessageDescriptor {
        self.rpc.output()
    }

    /// Whether the body is a JSON array of messages sent as a client stream.
    pub fn is_client_streaming(&self) -> bool {
        self.rpc.is_client_streaming()
    }
}

/// The variables a path bound, or why a value is unusable.
type Matched = Result<Vec<(Variable, String)>, String>;

/// How a request path and method relate to the table.
pub enum Lookup<'a> {
    Found(&'a Route, Vec<(Variable, String)>),
    /// A route matched the path but not a usable variable value.
    BadPath(String),
    /// Routes matched the path, with these methods (for the `Allow` header), none with the
    /// request's.
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Builds the table from every service in `pool`. A rule that names a missing field or has
    /// a malformed template is an error: it is a bug in our protos, better found at startup.
    pub fn from_pool(pool: &DescriptorPool) -> anyhow::Result<Self> {
        let Some(extension) = pool.get_extension_by_name(HTTP_EXTENSION) else {
            return Ok(Self { routes: Vec::new() });
        };
        let mut routes = Vec::new();
        for service in pool.services() {
            for rpc in service.methods() {
                let options = rpc.options();
                if !options.has_extension(&extension) {
                    continue;
                }
                // A client stream is transcoded from a JSON array body (one element per
                // message); a server stream would need a streaming JSON answer, which
                // grpc-gateway writes as newline-delimited chunks and we have no use for yet.
                if rpc.is_server_streaming() {
                    tracing::warn!(
                        method = rpc.full_name(),
                        "server-streaming methods are not transcoded to HTTP/JSON"
                    );
                    continue;
                }
                let rule = options.get_extension(&extension);
                let Some(rule) = rule.as_message() else {
                    continue;
                };
                let mut rules = vec![rule.clone()];
                if let Some(more) = rule.get_field_by_name("additional_bindings")
                    && let Some(list) = more.as_list()
                {
                    rules.extend(list.iter().filter_map(|v| v.as_message().cloned()));
                }
                for (index, rule) in rules.iter().enumerate() {
                    let route = build_route(&rpc, rule, index)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", rpc.full_name()))?;
                    routes.push(route);
                }
            }
        }
        Ok(Self { routes })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The most specific route for `method` and the raw (percent-encoded) `path`.
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        let mut allowed: Vec<Method> = Vec::new();
        let mut allowed_literals = 0;
        let mut best: Option<(&Route, Matched)> = None;
        for route in &self.routes {
            let Some(bound) = route.template.matches(path) else {
                continue;
            };
            // `Allow` names the methods of the most specific templates that match, the path
            // items the OpenAPI document lists (`/v1/users/_search` allows POST, though a GET
            // of it reaches `/v1/users/{user_id}`).
            let literals = route.template.literal_count();
            if literals > allowed_literals {
                allowed.clear();
                allowed_literals = literals;
            }
            if literals == allowed_literals && !allowed.contains(&route.http_method) {
                allowed.push(route.http_method.clone());
            }
            if route.http_method != *method {
                continue;
            }
            let better = match &best {
                None => true,
                Some((current, _)) => {
                    route.template.literal_count() > current.template.literal_count()
                }
            };
            if better {
                best = Some((route, bound));
            }
        }
        match best {
            Some((route, Ok(bound))) => Lookup::Found(route, bound),
            Some((_, Err(why))) => Lookup::BadPath(why),
            None if !allowed.is_empty() => Lookup::MethodNotAllowed(allowed),
            None => Lookup::NotFound,
        }
    }
}

fn string_field(rule: &DynamicMessage, name: &str) -> String {
    rule.get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn build_route(
    rpc: &MethodDescriptor,
    rule: &DynamicMessage,
    index: usize,
) -> anyhow::Result<Route> {
    let mut pattern = None;
    for (name, method) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        if rule.has_field_by_name(name) {
            pattern = Some((method, string_field(rule, name)));
        }
    }
    if rule.has_field_by_name("custom")
        && let Some(custom) = rule.get_field_by_name("custom")
        && let Some(custom) = custom.as_message()
    {
        let kind = string_field(custom, "kind");
        let method = Method::from_bytes(kind.as_bytes())
            .map_err(|_| anyhow::anyhow!("invalid custom HTTP method {kind:?}"))?;
        pattern = Some((method, string_field(custom, "path")));
    }
    let Some((http_method, path)) = pattern else {
        anyhow::bail!("http rule #{index} has no pattern");
    };
    let template = PathTemplate::parse(&path)?;
    let input = rpc.input();

    let mut path_bindings = Vec::new();
    for variable in &template.variables {
        let fields = resolve_path(&input, &variable.field_path)?;
        let leaf = fields.last().expect("a field path is never empty");
        if leaf.is_list() || leaf.is_map() || matches!(leaf.kind(), Kind::Message(_)) {
            anyhow::bail!(
                "path variable {} must name a singular scalar field",
                variable.name()
            );
        }
        path_bindings.push(PathBinding {
            variable: variable.clone(),
            fields,
        });
    }

    let body = match string_field(rule, "body").as_str() {
        "" => BodyRule::None,
        "*" => BodyRule::Whole,
        name => BodyRule::Field(
            input
                .get_field_by_name(name)
                .ok_or_else(|| anyhow::anyhow!("body field {name:?} does not exist"))?,
        ),
    };
    let response_body = match string_field(rule, "response_body").as_str() {
        "" => None,
        name => Some(
            rpc.output()
                .get_field_by_name(name)
                .ok_or_else(|| anyhow::anyhow!("response_body field {name:?} does not exist"))?,
        ),
    };
    if rpc.is_client_streaming() && (!matches!(body, BodyRule::Whole) || !path_bindings.is_empty())
    {
        anyhow::bail!(
            "a client-streaming method's rule must take the whole body (body: \"*\") and no \
             path variables: the body is the stream"
        );
    }
    let mut operation_id = format!("{}_{}", rpc.parent_service().name(), rpc.name());
    if index > 0 {
        operation_id.push_str(&(index + 1).to_string());
    }
    Ok(Route {
        http_method,
        template,
        grpc_path: format!("/{}/{}", rpc.parent_service().full_name(), rpc.name()),
        rpc: rpc.clone(),
        body,
        response_body,
        path_bindings,
        operation_id,
    })
}

/// Resolves `a.b.c` (proto names) to the fields it passes through.
fn resolve_path(root: &MessageDescriptor, path: &[String]) -> anyhow::Result<Vec<FieldDescriptor>> {
    let mut message = root.clone();
    let mut fields = Vec::with_capacity(path.len());
    for (i, name) in path.iter().enumerate() {
        let field = message.get_field_by_name(name).ok_or_else(|| {
            anyhow::anyhow!("field {} does not exist in {}", name, message.full_name())
        })?;
        if i + 1 < path.len() {
            match field.kind() {
                Kind::Message(next) if !field.is_list() && !field.is_map() => message = next,
                _ => anyhow::bail!("field {name} is not a singular message"),
            }
        }
        fields.push(field);
    }
    Ok(fields)
}
