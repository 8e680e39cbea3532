//! The drivers of the predefined `host` and `none` networks: the daemon's own namespace, and a
//! namespace with nothing but `lo`. They own no kernel objects; nothing can be created with
//! them or connected to them.

use serde_json::Value;

use super::{Attach, Draft, Driver, Env, Fut, Plan};
use crate::kernel::{LinkInfo, Netns};
use crate::model::{Endpoint, Network};
use crate::service::networks::CreateNetwork;
use crate::service::{Error, Result};

/// One predefined network's driver, told apart by Docker's refusals.
pub(in crate::service) struct Predefined {
    name: &'static str,
    /// Docker's refusal of a connect.
    connect: &'static str,
    /// Docker's refusal of a disconnect, where it has one.
    disconnect: Option<&'static str>,
}

pub(in crate::service) static HOST: Predefined = Predefined {
    name: "host",
    connect: "cannot connect container to host network - container must be created in host network mode",
    disconnect: Some(
        "cannot disconnect container from host network - container was created in host network mode",
    ),
};

pub(in crate::service) static NULL: Predefined = Predefined {
    name: "null",
    connect: "container cannot be connected to multiple networks with one of the networks in private (none) mode",
    disconnect: None,
};

fn never<'a, T: Send + 'a>(what: &'static str) -> Fut<'a, T> {
    Box::pin(async move {
        Err(Error::System(format!(
            "{what}: nothing to do for this driver"
        )))
    })
}

impl Driver for Predefined {
    fn name(&self) -> &'static str {
        self.name
    }

    fn check(&self, _req: &CreateNetwork) -> Result<Value> {
        Err(Error::Forbidden(format!(
            "only one instance of \"{}\" network is allowed",
            self.name
        )))
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
        Err(Error::InvalidParameter(self.connect.to_string()))
    }

    fn check_disconnect(&self) -> Result<()> {
        match self.disconnect {
            Some(refusal) => Err(Error::InvalidParameter(refusal.to_string())),
            None => Ok(()),
        }
    }

    fn host_ifname(&self, endpoint_id: &str) -> String {
        // No host end: a token with ':' can never be a link's name.
        format!("{}:{endpoint_id}", self.name)
    }

    fn attach<'a>(
        &'a self,
        _env: Env<'a>,
        _n: &'a Network,
        _a: Attach<'a>,
        _ready: crate::kernel::Ready,
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
