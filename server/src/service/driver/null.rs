//! The null driver: the predefined `none` network, a namespace with nothing but `lo`. Nothing
//! can be created with it or connected to it.

use serde_json::Value;

use super::{Attach, Draft, Driver, Env, Fut, Plan};
use crate::kernel::{LinkInfo, Netns};
use crate::model::{Endpoint, Network};
use crate::service::networks::CreateNetwork;
use crate::service::{Error, Result};

pub(in crate::service) struct Null;

/// Docker's refusal of a connect to `none`.
const NONE_ALONE: &str = "container cannot be connected to multiple networks with one of the networks in private (none) mode";

/// The refusals of a driver that only has its predefined network: create and connect.
pub(super) fn only_one(name: &str) -> Error {
    Error::Forbidden(format!(
        "only one instance of \"{name}\" network is allowed"
    ))
}

pub(super) fn never<'a, T: Send + 'a>(what: &'static str) -> Fut<'a, T> {
    Box::pin(async move {
        Err(Error::System(format!(
            "{what}: nothing to do for this driver"
        )))
    })
}

impl Driver for Null {
    fn name(&self) -> &'static str {
        "null"
    }

    fn check(&self, _req: &CreateNetwork) -> Result<Value> {
        Err(only_one(self.name()))
    }

    fn plan<'a>(&'a self, _env: Env<'a>, _draft: Draft<'a>) -> Fut<'a, Plan> {
        never("plan")
    }

    fn create<'a>(&'a self, _env: Env<'a>, _n: &'a Network) -> Fut<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn remove<'a>(
        &'a self,
        _env: Env<'a>,
        _id: &'a str,
        _state: &'a Value,
    ) -> Fut<'a, Option<String>> {
        Box::pin(async { Ok(None) })
    }

    fn check_connect(&self, _n: &Network, _endpoints: usize) -> Result<()> {
        Err(Error::InvalidParameter(NONE_ALONE.to_string()))
    }

    fn host_ifname(&self, endpoint_id: &str) -> String {
        format!("null:{endpoint_id}")
    }

    fn attach<'a>(
        &'a self,
        _env: Env<'a>,
        _n: &'a Network,
        _a: Attach<'a>,
        _ready: tokio::sync::oneshot::Receiver<bool>,
    ) -> Fut<'a, String> {
        never("attach")
    }

    fn detach<'a>(
        &'a self,
        _env: Env<'a>,
        _endpoint_id: &'a str,
        _host_ifname: &'a str,
        _ns: Option<&'a Netns>,
    ) -> Fut<'a, bool> {
        Box::pin(async { Ok(false) })
    }

    fn intact<'a>(
        &'a self,
        _env: Env<'a>,
        _n: &'a Network,
        _e: &'a Endpoint,
        _ns: Option<&'a Netns>,
        _links: &'a [LinkInfo],
    ) -> Fut<'a, bool> {
        Box::pin(async { Ok(true) })
    }
}
