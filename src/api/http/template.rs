//! The `google.api.http` path-template grammar, parsed once at startup, and matching of request
//! paths against a parsed template.
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```

use std::fmt;

use percent_encoding::percent_decode_str;

/// One segment of a template, after variables have been flattened into their segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Single,
    /// `**`: the rest of the path (zero or more segments); only last.
    Rest,
}

/// A variable: the request field it fills and the segments it spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    /// The dotted field path, e.g. `["user", "user_id"]`.
    pub field_path: Vec<String>,
    /// Index of its first segment.
    pub start: usize,
    /// Index one past its last segment (for `**`, the template's length).
    pub end: usize,
}

impl Variable {
    pub fn name(&self) -> String {
        self.field_path.join(".")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    pub segments: Vec<Segment>,
    pub variables: Vec<Variable>,
    pub verb: Option<String>,
    /// The template as written, for logs and the OpenAPI document.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

fn err<T>(template: &str, why: impl fmt::Display) -> Result<T, TemplateError> {
    Err(TemplateError(format!("path template {template:?}: {why}")))
}

fn is_literal_char(c: char) -> bool {
    // RFC 3986 unreserved characters plus the sub-delims that are harmless in a segment.
    c.is_ascii_alphanumeric() || "-._~!$&'()+,;@%".contains(c)
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PathTemplate {
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let Some(rest) = template.strip_prefix('/') else {
            return err(template, "must start with '/'");
        };
        // The verb is the text after the last ':' outside braces.
        let (body, verb) = split_verb(rest);
        if let Some(verb) = &verb
            && (verb.is_empty() || !verb.chars().all(is_literal_char))
        {
            return err(template, format!("invalid verb {verb:?}"));
        }

        let mut segments = Vec::new();
        let mut variables: Vec<Variable> = Vec::new();
        for part in split_top_level(body) {
            if let Some(inner) = part.strip_prefix('{') {
                let Some(inner) = inner.strip_suffix('}') else {
                    return err(template, format!("unclosed variable in {part:?}"));
                };
                let (path, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                let field_path: Vec<String> = path.split('.').map(str::to_owned).collect();
                if !field_path.iter().all(|p| is_ident(p)) {
                    return err(template, format!("invalid field path {path:?}"));
                }
                if variables.iter().any(|v| v.field_path == field_path) {
                    return err(template, format!("variable {path:?} appears twice"));
                }
                let start = segments.len();
                for sub in pattern.split('/') {
                    segments.push(parse_plain_segment(template, sub)?);
                }
                variables.push(Variable {
                    field_path,
                    start,
                    end: segments.len(),
                });
            } else {
                segments.push(parse_plain_segment(template, part)?);
            }
        }
        if let Some(position) = segments.iter().position(|s| *s == Segment::Rest)
            && position + 1 != segments.len()
        {
            return err(template, "'**' must be the last segment");
        }
        Ok(Self {
            segments,
            variables,
            verb,
            source: template.to_owned(),
        })
    }

    /// Number of literal segments: more literals means a more specific route.
    pub fn literal_count(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    /// Matches a raw (still percent-encoded) request path. `None` when it does not match;
    /// `Some(Err)` when it matches but a variable's value is unusable.
    pub fn matches(&self, raw_path: &str) -> Option<Result<Vec<(Variable, String)>, String>> {
        let rest = raw_path.strip_prefix('/')?;
        let rest = match &self.verb {
            Some(verb) => rest.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => rest,
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let has_rest = self.segments.last() == Some(&Segment::Rest);
        let fixed = if has_rest {
            self.segments.len() - 1
        } else {
            self.segments.len()
        };
        if parts.len() < fixed || (!has_rest && parts.len() != fixed) {
            return None;
        }
        for (segment, part) in self.segments.iter().zip(&parts) {
            match segment {
                Segment::Literal(literal) if literal != part => return None,
                Segment::Single if part.is_empty() => return None,
                _ => {}
            }
        }
        let mut bound = Vec::with_capacity(self.variables.len());
        for variable in &self.variables {
            let end = if variable.end == self.segments.len() && has_rest {
                parts.len()
            } else {
                variable.end
            };
            let mut values = Vec::with_capacity(end - variable.start);
            for part in &parts[variable.start..end] {
                match decode_segment(part) {
                    Ok(value) => values.push(value),
                    Err(why) => {
                        return Some(Err(format!("path variable {}: {why}", variable.name())));
                    }
                }
            }
            bound.push((variable.clone(), values.join("/")));
        }
        Some(Ok(bound))
    }

    /// The template in OpenAPI form: each variable becomes `{name}`.
    pub fn openapi_path(&self) -> String {
        let mut out = String::new();
        let mut i = 0;
        while i < self.segments.len() {
            out.push('/');
            if let Some(variable) = self.variables.iter().find(|v| v.start == i) {
                out.push('{');
                out.push_str(&variable.name());
                out.push('}');
                i = variable.end.max(i + 1);
                continue;
            }
            match &self.segments[i] {
                Segment::Literal(literal) => out.push_str(literal),
                // Anonymous wildcards cannot be expressed as OpenAPI parameters; keep them
                // visible in the path text.
                Segment::Single => out.push('*'),
                Segment::Rest => out.push_str("**"),
            }
            i += 1;
        }
        if let Some(verb) = &self.verb {
            out.push(':');
            out.push_str(verb);
        }
        out
    }

    /// The segment pattern a variable must match, for documentation (`None` for plain `*`).
    pub fn variable_pattern(&self, variable: &Variable) -> Option<String> {
        let segments = &self.segments[variable.start..variable.end];
        if segments == [Segment::Single] {
            return None;
        }
        Some(
            segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(l) => l.as_str(),
                    Segment::Single => "*",
                    Segment::Rest => "**",
                })
                .collect::<Vec<_>>()
                .join("/"),
        )
    }
}

fn parse_plain_segment(template: &str, part: &str) -> Result<Segment, TemplateError> {
    match part {
        "*" => Ok(Segment::Single),
        "**" => Ok(Segment::Rest),
        "" => err(template, "empty segment"),
        "." | ".." => err(template, format!("segment {part:?} is not allowed")),
        _ if part.chars().all(is_literal_char) => Ok(Segment::Literal(part.to_owned())),
        _ => err(template, format!("invalid segment {part:?}")),
    }
}

/// Splits `a/{b=c/*}/d` on the slashes outside braces.
fn split_top_level(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts
}

fn split_verb(body: &str) -> (&str, Option<String>) {
    let mut depth = 0usize;
    let mut colon = None;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => colon = Some(i),
            _ => {}
        }
    }
    match colon {
        Some(i) => (&body[..i], Some(body[i + 1..].to_owned())),
        None => (body, None),
    }
}

/// Percent-decodes one path segment of a variable. `%2F` becomes `/` (the value is data, not
/// routing); `.`/`..` and invalid UTF-8 are refused rather than passed on.
fn decode_segment(part: &str) -> Result<String, String> {
    let decoded = percent_decode_str(part)
        .decode_utf8()
        .map_err(|_| "not valid UTF-8 after percent-decoding".to_owned())?;
    if decoded.is_empty() {
        return Err("empty segment".into());
    }
    if decoded == "." || decoded == ".." {
        return Err(format!("segment {decoded:?} is not allowed"));
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Segment {
        Segment::Literal(s.into())
    }

    fn bound(template: &str, path: &str) -> Option<Result<Vec<(String, String)>, String>> {
        PathTemplate::parse(template)
            .unwrap()
            .matches(path)
            .map(|r| r.map(|v| v.into_iter().map(|(var, s)| (var.name(), s)).collect()))
    }

    #[test]
    fn parses_literals_and_simple_variables() {
        let t = PathTemplate::parse("/v1/users/{user_id}").unwrap();
        assert_eq!(t.segments, vec![lit("v1"), lit("users"), Segment::Single]);
        assert_eq!(
            t.variables,
            vec![Variable {
                field_path: vec!["user_id".into()],
                start: 2,
                end: 3
            }]
        );
        assert_eq!(t.verb, None);
        assert_eq!(t.openapi_path(), "/v1/users/{user_id}");
    }

    #[test]
    fn parses_nested_fields_patterns_rest_and_verbs() {
        let t = PathTemplate::parse("/v1/{user.user_id}/{name=orgs/*/users/*}:activate").unwrap();
        assert_eq!(
            t.segments,
            vec![
                lit("v1"),
                Segment::Single,
                lit("orgs"),
                Segment::Single,
                lit("users"),
                Segment::Single
            ]
        );
        assert_eq!(t.variables[0].field_path, vec!["user", "user_id"]);
        assert_eq!((t.variables[1].start, t.variables[1].end), (2, 6));
        assert_eq!(t.verb.as_deref(), Some("activate"));
        assert_eq!(t.openapi_path(), "/v1/{user.user_id}/{name}:activate");
        assert_eq!(
            t.variable_pattern(&t.variables[1]).as_deref(),
            Some("orgs/*/users/*")
        );

        let t = PathTemplate::parse("/v1/files/{path=**}").unwrap();
        assert_eq!(t.segments.last(), Some(&Segment::Rest));
    }

    #[test]
    fn refuses_malformed_templates() {
        for bad in [
            "v1/users",
            "/v1//users",
            "/v1/{a}/{a}",
            "/v1/{a",
            "/v1/{1a}",
            "/v1/**/x",
            "/v1/../x",
            "/v1/x:",
            "/v1/sp ace",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn matches_and_decodes_variables() {
        assert_eq!(
            bound("/v1/users/{user_id}", "/v1/users/abc"),
            Some(Ok(vec![("user_id".into(), "abc".into())]))
        );
        assert_eq!(
            bound("/v1/users/{user_id}", "/v1/users/a%20b%2Fc"),
            Some(Ok(vec![("user_id".into(), "a b/c".into())]))
        );
        assert_eq!(bound("/v1/users/{user_id}", "/v1/users"), None);
        assert_eq!(bound("/v1/users/{user_id}", "/v1/users/"), None);
        assert_eq!(bound("/v1/users/{user_id}", "/v1/users/a/b"), None);
        assert_eq!(
            bound("/v1/users/_search", "/v1/users/_search"),
            Some(Ok(vec![]))
        );
        assert_eq!(
            bound("/v1/{name=orgs/*/users/*}", "/v1/orgs/o1/users/u1"),
            Some(Ok(vec![("name".into(), "orgs/o1/users/u1".into())]))
        );
        assert_eq!(bound("/v1/{name=orgs/*/users/*}", "/v1/orgs/o1/x/u1"), None);
        assert_eq!(
            bound("/v1/files/{path=**}", "/v1/files/a/b/c"),
            Some(Ok(vec![("path".into(), "a/b/c".into())]))
        );
        assert_eq!(
            bound("/v1/users/{id}:activate", "/v1/users/u1:activate"),
            Some(Ok(vec![("id".into(), "u1".into())]))
        );
        assert_eq!(bound("/v1/users/{id}:activate", "/v1/users/u1"), None);
    }

    #[test]
    fn refuses_unusable_variable_values() {
        for path in [
            "/v1/users/..",
            "/v1/users/%2E%2E",
            "/v1/users/%FF",
            "/v1/users/.",
        ] {
            assert!(
                matches!(bound("/v1/users/{user_id}", path), Some(Err(_))),
                "{path}"
            );
        }
    }
}
