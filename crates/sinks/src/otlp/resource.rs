//! Who sends: the OTLP resource (`service.name` and the configured attributes) and the
//! instrumentation scope, built once per sink and shared by every request.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::semconv::Attributes;

/// The resource and scope every export of one sink carries.
#[derive(Debug, Clone)]
pub struct Origin {
    pub resource: Resource,
    pub scope: InstrumentationScope,
}

impl Origin {
    /// `service.name` first, then the configured attributes in key order (a configured
    /// `service.name` gives way to `service_name`, which is the one the docs name).
    pub fn new(service_name: &str, attributes: &BTreeMap<String, String>) -> Origin {
        let mut out = Attributes::default();
        out.string("service.name", service_name);
        for (key, value) in attributes {
            if key != "service.name" {
                out.string(key, value);
            }
        }
        Origin {
            resource: Resource {
                attributes: out.0,
                ..Resource::default()
            },
            scope: InstrumentationScope {
                name: "mcp-audit".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                ..InstrumentationScope::default()
            },
        }
    }
}
