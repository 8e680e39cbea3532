//! The host driver: the predefined `host` network, the daemon's own namespace. Nothing can
//! be created with it or connected to it.

use serde_json::Value;

use super::null::{never, only_one};
use super::{Attach, Draft, Driver, Env, Fut, Plan};
use crate::kernel::{LinkInfo, Netns};
use crate::model::{Endpoint, Network};
use crate::service::networks::CreateNetwork;
use crate::service::{Error, Result};

pub(in crate::service) struct Host;

impl Driver for Host {
    fn name(&self) -> &'static str {
        "host"
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
        Err(Error::InvalidParameter(
            "cannot connect container to host network - container must be created in host network mode"
                .to_string(),
        ))
    }

    fn check_disconnect(&self) -> Result<()> {
        Err(Error::InvalidParameter(
            "cannot disconnect container from host network - container was created in host network mode"
                .to_string(),
        ))
    }

    fn host_ifname(&self, endpoint_id: &str) -> String {
        format!("host:{endpoint_id}")
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
